# checks.<system>: lib.buildImage proven by building. A script and the data file
# it reads (two store paths, one referring to the other) become an image with every
# config field buildImage maps; the check fails unless `ocibench inspect` shows
# each field as given and one layer per store path of the closure.
{ pkgs, ocibench, buildImage }:

let
  greeting = pkgs.runCommand "greeting-data" { } ''
    mkdir -p $out/share
    echo "hello from a nix store path" > $out/share/greeting
  '';
  greet = pkgs.writeShellScriptBin "greet" ''
    read -r line < ${greeting}/share/greeting
    # Shell builtins only: the image holds nothing but the closure.
    echo "$line; GREETING=$GREETING; cwd=$PWD; args=$*"
  '';
  config = {
    Entrypoint = [ "${greet}/bin/greet" ];
    Cmd = [ "--loud" ];
    Env = [ "GREETING=hello" "PATH=${greet}/bin" ];
    WorkingDir = "/tmp";
    User = "1000:1000";
    ExposedPorts = { "8080/tcp" = { }; };
    Labels = { "org.opencontainers.image.title" = "greet"; };
    Volumes = { "/data" = { }; };
    StopSignal = "SIGINT";
    Healthcheck = { Test = [ "CMD" "${greet}/bin/greet" ]; Interval = 30000000000; Retries = 3; };
  };
  image = buildImage {
    name = "greet";
    tag = "check";
    contents = [ greet ];
    created = 1700000000;
    inherit config;
  };
in
{
  buildImage-greet = pkgs.runCommand "buildImage-greet-inspect"
    {
      nativeBuildInputs = [ ocibench ];
      exportReferencesGraph = [ "closure" greet ];
    } ''
    export HOME=$TMPDIR OCIBENCH_CACHE=$TMPDIR/cache
    ocibench inspect --quiet oci-archive:${image}
    ocibench inspect --quiet --config oci-archive:${image} > config.json
    # The config is canonical JSON (sorted keys, compact), as builtins.toJSON
    # writes: the whole `config` object must be exactly the one given.
    want='"config":${builtins.toJSON config},"created":"2023-11-14T22:13:20Z"'
    if ! grep -F -q -- "$want" config.json; then
      echo "config differs; wanted $want in:"; cat config.json; exit 1
    fi
    # One layer (one history entry) per store path of the closure.
    paths=0
    while read -r path && read -r deriver && read -r n; do
      paths=$((paths + 1))
      while [ "$n" -gt 0 ]; do read -r ref; n=$((n - 1)); done
    done < closure
    layers=$(grep -o '"comment":"ocibench"' config.json | wc -l)
    if [ "$layers" -ne "$paths" ]; then
      echo "$layers layers for $paths store paths"; exit 1
    fi
    echo "config as given; $layers layers for $paths store paths"
    cp config.json $out
  '';
  # The image itself, so `nix build .#checks.SYSTEM.buildImage-greet-image` gives a
  # file to load into podman.
  buildImage-greet-image = image;
}
