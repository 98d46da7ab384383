# The nixpkgs `lib` functions ocibench's flake calls, written from their documented
# behaviour (nixpkgs' own lib cannot be fetched here).
rec {
  genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
  optionalString = cond: s: if cond then s else "";
  # Single-quoted for sh: ' becomes '\''.
  escapeShellArg = arg: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
  concatMapStringsSep = sep: f: list: builtins.concatStringsSep sep (map f list);
  concatLists = builtins.concatLists;
  concatMap = builtins.concatMap;
  imap0 = f: list: builtins.genList (n: f n (builtins.elemAt list n)) (builtins.length list);
  # Sources are never built here (the stand-in's buildRustPackage wraps a binary).
  cleanSource = src: src;
  licenses = { mit = { spdxId = "MIT"; }; asl20 = { spdxId = "Apache-2.0"; }; };
}
