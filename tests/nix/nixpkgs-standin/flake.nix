# A stand-in for nixpkgs with only what ocibench's flake.nix uses, so the real flake
# can be evaluated and built offline (these machines cannot fetch nixpkgs):
#   nix build --override-input nixpkgs path:STANDIN .#checks.x86_64-linux.buildImage-greet
# STANDIN is a copy of this directory completed by tests/nix/prepare-standin.sh: it
# adds busybox (the builders' shell and tools) and the ocibench binary built by
# cargo with the libraries it loads, so builds run in the sandbox with no host paths.
{
  description = "nixpkgs stand-in for testing ocibench's flake offline";

  outputs = { self }:
    let
      lib = import ./lib.nix;
      systems = [ "x86_64-linux" "aarch64-linux" ];
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs systems (system: import ./pkgs.nix { inherit lib system; });
    };
}
