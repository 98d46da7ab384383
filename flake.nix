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

      devShells = forAll (system: pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${system}.ocibench ];
          packages = with pkgs; [
            cargo rustc rustfmt clippy cargo-nextest
            distribution skopeo podman runc busybox apacheHttpd nginx
            debootstrap pigz jq curl wrk hey oha
          ];
        };
      });
    };
}
