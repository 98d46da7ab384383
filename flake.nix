{
  description = "ocibench: which base image should your service be built on? Pull, size, build, run and load-test OCI images, daemonless.";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      cargoToml = builtins.fromTOML (builtins.readFile ./Cargo.toml);
    in
    {
      packages = forAll (system: pkgs: rec {
        ocibench = pkgs.rustPlatform.buildRustPackage {
          pname = "ocibench";
          version = cargoToml.package.version;
          src = pkgs.lib.cleanSource ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # isal-sys builds ISA-L's igzip (the pull's inflater) from its vendored source.
          nativeBuildInputs = with pkgs; [ nasm autoconf automake libtool ];
          # The integration tests start a registry, podman and nginx: run them with
          # scripts/test.sh in the dev shell, not inside the build sandbox.
          doCheck = false;
          meta = {
            description = cargoToml.package.description;
            mainProgram = "ocibench";
            license = with pkgs.lib.licenses; [ mit asl20 ];
          };
        };
        default = ocibench;
      });

      apps = forAll (system: pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${system}.ocibench}/bin/ocibench";
        };
      });

      # Build an image from derivations with ocibench, as dockerTools.buildLayeredImage
      # does: one layer per store path of the closure (popular paths alone, at most
      # maxLayers), onto `fromImage` (an oci-archive path) or scratch. The result is an
      # oci-archive, reproducible (SOURCE_DATE_EPOCH fixed).
      #   ocibench.lib.x86_64-linux.buildImage { name = "hello"; contents = [ pkgs.hello ];
      #     config.Cmd = [ "${pkgs.hello}/bin/hello" ]; }
      lib = forAll (system: pkgs: {
        buildImage =
          { name, tag ? "latest", contents ? [ ], fromImage ? null, maxLayers ? 100
          , config ? { }, }:
          let
            ocibench = self.packages.${system}.ocibench;
            flag = f: v: pkgs.lib.optionalString (v != null) "${f} ${pkgs.lib.escapeShellArg v}";
            json = v: builtins.toJSON v;
            cfg = config;
          in
          pkgs.runCommand "${name}-image.tar" {
            nativeBuildInputs = [ ocibench pkgs.nix ];
            SOURCE_DATE_EPOCH = "1";
            # Inside the sandbox nix-store cannot query the store: Nix writes each
            # root's closure graph into the build directory instead.
            exportReferencesGraph = pkgs.lib.concatLists
              (pkgs.lib.imap0 (i: p: [ "closure-${toString i}" p ]) contents);
          } ''
            export HOME=$TMPDIR OCIBENCH_CACHE=$TMPDIR/cache
            ocibench build               --from ${if fromImage == null then "scratch" else "oci-archive:${fromImage}"}               ${pkgs.lib.concatMapStringsSep " " (p: "--nix-closure ${p}") contents}               --max-layers ${toString maxLayers}               ${flag "--entrypoint" (if cfg ? Entrypoint then json cfg.Entrypoint else null)}               ${flag "--cmd" (if cfg ? Cmd then json cfg.Cmd else null)}               ${pkgs.lib.concatMapStringsSep " " (e: "--env ${pkgs.lib.escapeShellArg e}") (cfg.Env or [ ])}               ${flag "--workdir" (cfg.WorkingDir or null)}               ${flag "--user" (cfg.User or null)}               --output oci-archive:$out:${name}:${tag}
          '';
      });

      devShells = forAll (system: pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${system}.ocibench ];
          packages = with pkgs; [
            cargo rustc rustfmt clippy cargo-nextest
            distribution skopeo podman runc busybox apacheHttpd nginx nix
            debootstrap pigz jq curl openssl wrk hey oha
          ];
        };
      });
    };
}
