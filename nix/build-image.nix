# lib.<system>.buildImage: an OCI image from Nix store paths, built by `ocibench build`
# inside the build sandbox. It exists so Nix users get dockerTools' layering (one
# layer per store path, popularity order) with ocibench's reproducible output, and
# take any archive dockerTools or ocibench writes as a base.
#
# The sandbox has no Nix database, so the closure cannot be asked of nix-store:
# `exportReferencesGraph` makes Nix write each root's closure graph into the build
# directory (closure-0, closure-1, ...) and ocibench reads them with --nix-graph.
{ pkgs, ocibench }:

{ name
, tag ? "latest"
  # Derivations (or store paths) whose closures become the image's layers.
, contents ? [ ]
  # An image archive: oci-archive or docker-archive (as dockerTools.pullImage,
  # dockerTools.buildImage, `skopeo copy` or `podman save` write), plain or gzipped.
, fromImage ? null
  # "oci-archive" or "docker-archive"; null: found out from the archive itself.
, fromImageFormat ? null
, maxLayers ? 100
  # Docker-style keys, as dockerTools' `config`: Entrypoint, Cmd, Env, WorkingDir,
  # User, ExposedPorts, Labels, Volumes, StopSignal, Healthcheck.
, config ? { }
  # Seconds since 1970 (SOURCE_DATE_EPOCH) for the config's and layers' timestamps.
, created ? 1
}:

let
  inherit (pkgs) lib;
  known = [ "Entrypoint" "Cmd" "Env" "WorkingDir" "User" "ExposedPorts" "Labels" "Volumes" "StopSignal" "Healthcheck" ];
  unknown = builtins.filter (k: !(builtins.elem k known)) (builtins.attrNames config);
  # Refuse what would otherwise be silently dropped.
  checkedConfig =
    if unknown != [ ] then
      throw "buildImage ${name}: config.${builtins.head unknown} is not supported (supported: ${builtins.concatStringsSep ", " known})"
    else config;
  epoch =
    if builtins.isInt created then toString created
    else if builtins.isString created && builtins.match "[0-9]+" created != null then created
    else throw "buildImage ${name}: created must be seconds since 1970 (an integer), e.g. 1";
  format =
    if fromImageFormat == null || builtins.elem fromImageFormat [ "oci-archive" "docker-archive" ] then fromImageFormat
    else throw "buildImage ${name}: fromImageFormat must be \"oci-archive\" or \"docker-archive\"";

  cfg = checkedConfig;
  optional = key: f: if cfg ? ${key} then f cfg.${key} else [ ];
  json = builtins.toJSON;
  # The flags, one argument each; escaped once, below.
  configFlags =
    optional "Entrypoint" (v: [ "--entrypoint" (json v) ])
    ++ optional "Cmd" (v: [ "--cmd" (json v) ])
    ++ optional "Env" (v: lib.concatMap (e: [ "--env" e ]) v)
    ++ optional "WorkingDir" (v: [ "--workdir" v ])
    ++ optional "User" (v: [ "--user" v ])
    ++ optional "ExposedPorts" (v: lib.concatMap (p: [ "--expose" p ]) (builtins.attrNames v))
    ++ optional "Labels" (v: lib.concatMap (k: [ "--label" "${k}=${v.${k}}" ]) (builtins.attrNames v))
    ++ optional "Volumes" (v: lib.concatMap (p: [ "--volume" p ]) (builtins.attrNames v))
    ++ optional "StopSignal" (v: [ "--stop-signal" v ])
    ++ optional "Healthcheck" (v: [ "--healthcheck" (json v) ]);
  closureFlags = lib.concatLists (lib.imap0
    (i: p: [ "--nix-closure" "${p}" "--nix-graph" "closure-${toString i}" ])
    contents);
  args = closureFlags ++ [ "--max-layers" (toString maxLayers) ] ++ configFlags;
  continued = lib.concatMapStringsSep " \\\n  " lib.escapeShellArg;

  image = pkgs.runCommand "${name}-image.tar"
    {
      nativeBuildInputs = [ ocibench ];
      SOURCE_DATE_EPOCH = epoch;
      exportReferencesGraph = lib.concatLists
        (lib.imap0 (i: p: [ "closure-${toString i}" p ]) contents);
      passthru = {
        # `nix run .#IMAGE.copyToPodman`: load into podman's storage as NAME:TAG.
        copyToPodman = pkgs.writeShellScriptBin "copy-to-podman" ''
          exec podman load -i ${image} "$@"
        '';
        # `nix run .#IMAGE.copyToRegistry -- [DEST [ocibench push flags]]`; DEST
        # defaults to docker://NAME:TAG.
        copyToRegistry = pkgs.writeShellScriptBin "copy-to-registry" ''
          dest=''${1:-docker://${name}:${tag}}
          [ $# -gt 0 ] && shift
          exec ${ocibench}/bin/ocibench push oci-archive:${image} "$dest" "$@"
        '';
        imageName = name;
        imageTag = tag;
      };
    }
    ''
      export HOME=$TMPDIR OCIBENCH_CACHE=$TMPDIR/cache
      ${lib.optionalString (fromImage != null) ''
        from=${fromImage}
        # dockerTools.buildImage and buildLayeredImage write gzipped docker-archives.
        if gzip -t "$from" 2>/dev/null; then
          gzip -dc "$from" > "$TMPDIR/from.tar"
          from=$TMPDIR/from.tar
        fi
        format=${if format == null then "" else format}
        if [ -z "$format" ]; then
          if ocibench inspect --quiet "oci-archive:$from" >/dev/null 2>&1; then
            format=oci-archive
          else
            format=docker-archive
          fi
        fi
      ''}
      ocibench build --quiet \
        --from ${if fromImage == null then "scratch" else "\"$format:$from\""} \
        ${continued args} \
        --output "oci-archive:$out:"${lib.escapeShellArg "${name}:${tag}"}
    '';
in
image
