# legacyPackages.<system> of the stand-in: runCommand and the trivial builders over
# a static busybox, and a rustPlatform.buildRustPackage that wraps the ocibench
# binary cargo built (run through its own copy of the dynamic loader, since the
# sandbox has no /lib).
{ lib, system }:

let
  # Both directories are added by tests/nix/prepare-standin.sh.
  busybox = ./busybox;
  prebuilt = ./ocibench;
  shell = "${busybox}/bin/sh";

  runCommand = name: env: script:
    let
      passthru = env.passthru or { };
      inputs = (env.nativeBuildInputs or [ ]) ++ (env.buildInputs or [ ]);
      drv = derivation (removeAttrs env [ "passthru" "nativeBuildInputs" "buildInputs" ] // {
        inherit name system;
        builder = shell;
        args = [ "-e" "-c" script ];
        PATH = lib.concatMapStringsSep ":" (p: "${p}/bin") (inputs ++ [ busybox ]);
        # A fresh value per prepared stand-in (prepare-standin.sh): every derivation
        # is new, so a test run really builds instead of finding the last run's
        # outputs in the store.
        standinSalt = if builtins.pathExists ./salt then builtins.readFile ./salt else "";
      });
    in
    drv // passthru // { inherit passthru; };

  writeShellScriptBin = name: text: runCommand name { inherit text; } ''
    mkdir -p $out/bin
    printf '#!%s\n%s' ${shell} "$text" > $out/bin/${name}
    chmod +x $out/bin/${name}
  '';
in
{
  inherit lib runCommand writeShellScriptBin;
  writeShellScript = name: text: runCommand name { inherit text; } ''
    printf '#!%s\n%s' ${shell} "$text" > $out
    chmod +x $out
  '';
  mkShell = args: runCommand "stand-in-shell" { } ''
    echo "the nixpkgs stand-in has no development shell" >&2
    exit 1
  '';
  rustPlatform.buildRustPackage = args: runCommand "${args.pname}-${args.version}"
    { passthru.meta = args.meta or { }; } ''
    mkdir -p $out/bin
    ln -s ${prebuilt}/lib $out/lib
    printf '#!%s\nexec %s/lib/ld.so --library-path %s/lib %s/lib/%s "$@"\n' \
      ${shell} $out $out $out ${args.pname} > $out/bin/${args.pname}
    chmod +x $out/bin/${args.pname}
  '';
}
