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
      # maxLayers), onto `fromImage` or scratch. The result is an oci-archive,
      # reproducible (SOURCE_DATE_EPOCH = created). It works inside the build sandbox:
      # Nix writes each root's closure graph (exportReferencesGraph) into the build
      # directory and ocibench reads it with --nix-graph, never calling nix-store.
      #   ocibench.lib.x86_64-linux.buildImage { name = "hello"; contents = [ pkgs.hello ];
      #     config.Cmd = [ "${pkgs.hello}/bin/hello" ]; }
      #   nix run .#myImage.copyToPodman          # podman load
      #   nix run .#myImage.copyToRegistry -- docker://registry.example/hello:1
      lib = forAll (system: pkgs: {
        buildImage = import ./nix/build-image.nix {
          inherit pkgs;
          ocibench = self.packages.${system}.ocibench;
        };
      });

      # Build a two-path image (a script and the data file it reads) with
      # lib.buildImage and check the config and layers `ocibench inspect` reports.
      checks = forAll (system: pkgs: import ./nix/checks.nix {
        inherit pkgs;
        ocibench = self.packages.${system}.ocibench;
        buildImage = self.lib.${system}.buildImage;
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
