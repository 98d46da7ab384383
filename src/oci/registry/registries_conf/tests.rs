use super::*;

fn conf(files: &[(&str, &str)]) -> RegistriesConf {
    RegistriesConf::from_texts(files.iter().map(|(p, t)| (Path::new(*p), *t)))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn r(s: &str) -> ImageReference {
    s.parse().unwrap()
}

/// The pull endpoints as strings, a mirror marked `m:`.
fn pulls(c: &RegistriesConf, image: &str) -> Vec<String> {
    c.pull_endpoints(&r(image))
        .unwrap()
        .into_iter()
        .map(|e| {
            format!(
                "{}{}{}",
                if e.mirror { "m:" } else { "" },
                if e.insecure { "insecure:" } else { "" },
                e.reference
            )
        })
        .collect()
}

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn without_a_table_a_name_is_its_own_location() {
    let c = conf(&[("/a.conf", "unqualified-search-registries = [\"quay.io\"]\n")]);
    assert_eq!(
        pulls(&c, "python:3"),
        ["docker.io/library/python:3".to_string()]
    );
    assert_eq!(
        c.push_endpoint(&r("python:3")).unwrap().reference,
        r("python:3")
    );
}

#[test]
fn the_longest_prefix_wins_and_is_replaced_by_its_location() {
    let c = conf(&[(
        "/r.conf",
        r#"
[[registry]]
prefix = "example.com"
location = "short.lan"

[[registry]]
prefix = "example.com/team"
location = "127.0.0.1:5000/mirrored/team"

[[registry]]
prefix = "example.com/te"
location = "wrong.lan"
"#,
    )]);
    assert_eq!(
        pulls(&c, "example.com/team/app:1"),
        ["127.0.0.1:5000/mirrored/team/app:1"]
    );
    // `example.com/te` is no prefix of `example.com/team/...` (no separator after it).
    assert_eq!(
        pulls(&c, "example.com/teams/app:1"),
        ["short.lan/teams/app:1"]
    );
    assert_eq!(
        pulls(&c, &format!("example.com/team@{DIGEST}")),
        [format!("127.0.0.1:5000/mirrored/team@{DIGEST}")]
    );
    // `example.com` does not match `example.community`.
    assert_eq!(
        pulls(&c, "example.community/x:1"),
        ["example.community/x:1"]
    );
    // The prefix may name a tag: the whole reference matches.
    let c = conf(&[(
        "/t.conf",
        "[[registry]]\nprefix = \"example.com/app:old\"\nlocation = \"archive.lan/app:kept\"\n",
    )]);
    assert_eq!(pulls(&c, "example.com/app:old"), ["archive.lan/app:kept"]);
    assert_eq!(pulls(&c, "example.com/app:new"), ["example.com/app:new"]);
}

#[test]
fn docker_hub_names_match_in_their_full_form() {
    let c = conf(&[(
        "/hub.conf",
        r#"
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "mirror.lan:5000/hub"
insecure = true
"#,
    )]);
    assert_eq!(
        pulls(&c, "busybox"),
        [
            "m:insecure:mirror.lan:5000/hub/library/busybox:latest",
            "docker.io/library/busybox:latest"
        ]
    );
    assert_eq!(c.insecure_hosts(&[]), ["mirror.lan:5000"]);
}

#[test]
fn wildcard_prefixes_match_subdomains_and_keep_the_name() {
    let c = conf(&[(
        "/w.conf",
        r#"
[[registry]]
prefix = "*.corp.example"
insecure = true

[[registry]]
prefix = "*.blocked.example"
blocked = true
"#,
    )]);
    assert_eq!(
        pulls(&c, "a.b.corp.example/x:1"),
        ["insecure:a.b.corp.example/x:1"]
    );
    assert_eq!(pulls(&c, "corp.example/x:1"), ["corp.example/x:1"]);
    assert_eq!(pulls(&c, "evilcorp.example/x:1"), ["evilcorp.example/x:1"]);
    assert_eq!(
        pulls(&c, "other.example/a.corp.example:1"),
        ["other.example/a.corp.example:1"]
    );
    // Insecure hosts of such a table are the command's own names it covers.
    assert!(c.insecure_hosts(&[&r("plain.example/x")]).is_empty());
    let images = [&r("r.corp.example:5000/x"), &r("plain.example/x")];
    assert_eq!(c.insecure_hosts(&images), ["r.corp.example:5000"]);
    let e = c.pull_endpoints(&r("x.blocked.example/app:1")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.blocked.example/app:1 is blocked: registry \"*.blocked.example\" has blocked = true in /w.conf"
    );
    assert!(c.push_endpoint(&r("x.blocked.example/app:1")).is_err());
    // A wildcard is only `*.domain`.
    for bad in ["*.corp.example/team", "*.corp.example:5000"] {
        let text = format!("[[registry]]\nprefix = \"{bad}\"\n");
        let e = parse_file(&text, Path::new("/bad.conf")).unwrap_err();
        assert!(
            matches!(e, RegistriesConfError::Invalid { .. }),
            "{bad}: {e}"
        );
    }
}

#[test]
fn match_len_follows_containers_image() {
    assert_eq!(match_len("a.com/x:1", "a.com"), Some(5));
    assert_eq!(match_len("a.com/x:1", "a.com/x"), Some(7));
    assert_eq!(match_len("a.com/x:1", "a.com/x:1"), Some(9));
    assert_eq!(match_len("a.com/xy:1", "a.com/x"), None);
    assert_eq!(match_len("a.com", "a.com/x"), None);
    assert_eq!(match_len("b.a.com/x:1", "*.a.com"), Some(7));
    assert_eq!(match_len("a.com/x:1", "*.a.com"), None);
    assert_eq!(match_len("b.a.com:5000/x", "*.a.com"), Some(7));
    assert_eq!(match_len("b.a.comm/x", "*.a.com"), None);
}

#[test]
fn mirrors_come_first_as_pull_from_mirror_allows() {
    let c = conf(&[(
        "/m.conf",
        r#"
[[registry]]
prefix = "example.com/team"
location = "loc.lan/team"

[[registry.mirror]]
location = "all.lan/t"

[[registry.mirror]]
location = "digests.lan/t"
pull-from-mirror = "digest-only"

[[registry.mirror]]
location = "tags.lan/t"
pull-from-mirror = "tag-only"
"#,
    )]);
    assert_eq!(
        pulls(&c, "example.com/team/app:1"),
        [
            "m:all.lan/t/app:1",
            "m:tags.lan/t/app:1",
            "loc.lan/team/app:1"
        ]
    );
    assert_eq!(
        pulls(&c, &format!("example.com/team/app@{DIGEST}")),
        [
            format!("m:all.lan/t/app@{DIGEST}"),
            format!("m:digests.lan/t/app@{DIGEST}"),
            format!("loc.lan/team/app@{DIGEST}"),
        ]
    );
    // A push goes to the location only.
    assert_eq!(
        c.push_endpoint(&r("example.com/team/app:1")).unwrap(),
        Endpoint {
            reference: r("loc.lan/team/app:1"),
            insecure: false,
            mirror: false,
        }
    );
    let c = conf(&[(
        "/d.conf",
        r#"
[[registry]]
location = "loc.lan"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.lan"
"#,
    )]);
    assert_eq!(pulls(&c, "loc.lan/app:1"), ["loc.lan/app:1"]);
    assert_eq!(
        pulls(&c, &format!("loc.lan/app@{DIGEST}")),
        [
            format!("m:m.lan/app@{DIGEST}"),
            format!("loc.lan/app@{DIGEST}")
        ]
    );
}

#[test]
fn drop_ins_replace_tables_of_the_same_prefix() {
    let c = conf(&[
        (
            "/etc/containers/registries.conf",
            r#"
[[registry]]
location = "a.lan"
blocked = true
[[registry]]
location = "b.lan"
insecure = true
"#,
        ),
        (
            "/etc/containers/registries.conf.d/10-a.conf",
            "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"m.lan\"\n",
        ),
    ]);
    assert_eq!(pulls(&c, "a.lan/x:1"), ["m:m.lan/x:1", "a.lan/x:1"]);
    assert_eq!(pulls(&c, "b.lan/x:1"), ["insecure:b.lan/x:1"]);
    assert_eq!(c.files().len(), 2);
    assert_eq!(
        c.registries()
            .iter()
            .map(|t| t.file.display().to_string())
            .collect::<Vec<_>>(),
        [
            "/etc/containers/registries.conf.d/10-a.conf",
            "/etc/containers/registries.conf"
        ]
    );
}

#[test]
fn one_prefix_twice_in_a_file_is_one_registry() {
    let text = r#"
[[registry]]
location = "a.lan"
[[registry.mirror]]
location = "m1.lan"
[[registry]]
location = "a.lan"
[[registry.mirror]]
location = "m2.lan"
"#;
    let c = conf(&[("/x.conf", text)]);
    assert_eq!(
        pulls(&c, "a.lan/x:1"),
        ["m:m1.lan/x:1", "m:m2.lan/x:1", "a.lan/x:1"]
    );
    let clash =
        "[[registry]]\nlocation = \"a.lan\"\n[[registry]]\nlocation = \"a.lan\"\ninsecure = true\n";
    let e = parse_file(clash, Path::new("/x.conf")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/x.conf: registry \"a.lan\" is defined twice with different insecure settings"
    );
}

#[test]
fn version_1_files_are_refused_not_ignored() {
    let v1 = "[registries.search]\nregistries = ['docker.io']\n[registries.insecure]\nregistries = ['lan:5000']\n";
    let e = parse_file(v1, Path::new("/etc/containers/registries.conf")).unwrap_err();
    assert!(matches!(e, RegistriesConfError::Version1 { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("/etc/containers/registries.conf is in the version 1 format"),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_ignored_and_syntax_errors_name_file_and_line() {
    let text = r#"
unqualified-search-registries = ["docker.io", "quay.io"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json"]
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
[[registry]]
location = "a.lan"
some-future-key = 3
"#;
    assert_eq!(parse_file(text, Path::new("/ok.conf")).unwrap().len(), 1);
    let e = parse_file(
        "[[registry]]\nlocation = \"a.lan\"\ninsecure = yes\n",
        Path::new("/u.conf"),
    )
    .unwrap_err();
    let RegistriesConfError::Syntax { line, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(*line, 3, "{e}");
    assert!(e.to_string().starts_with("/u.conf:3: "), "{e}");
    // A wrong type is reported where it is, too.
    let e = parse_file(
        "\n[[registry]]\nlocation = \"a.lan\"\nblocked = \"true\"\n",
        Path::new("/t.conf"),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("/t.conf:4: "), "{e}");
}

#[test]
fn invalid_tables_are_errors_as_in_containers_image() {
    for (text, wanted) in [
        (
            "[[registry]]\ninsecure = true\n",
            "neither prefix nor location",
        ),
        (
            "[[registry]]\nlocation = \"https://a.lan\"\n",
            "URI schemes are not supported",
        ),
        (
            "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\ninsecure = true\n",
            "has no location",
        ),
        (
            "[[registry]]\nlocation = \"a.lan\"\n[[registry.mirror]]\nlocation = \"m.lan\"\npull-from-mirror = \"sometimes\"\n",
            "unsupported pull-from-mirror value \"sometimes\"",
        ),
        (
            "[[registry]]\nlocation = \"a.lan\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.lan\"\npull-from-mirror = \"tag-only\"\n",
            "choose one",
        ),
        (
            "[[registry]]\nlocation = \"a.lan\"\npull-from-mirror = \"all\"\n",
            "non-mirror registry",
        ),
    ] {
        let e = parse_file(text, Path::new("/i.conf"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(wanted), "{text}: {e}");
    }
    // A trailing slash is dropped, as containers/image does.
    let t = parse_file(
        "[[registry]]\nprefix = \"a.lan/x/\"\nlocation = \"b.lan/y/\"\n",
        Path::new("/s.conf"),
    )
    .unwrap();
    assert_eq!(
        (t[0].prefix.as_str(), t[0].location.as_str()),
        ("a.lan/x", "b.lan/y")
    );
}

#[test]
fn a_rewrite_into_a_bad_reference_is_an_error_naming_the_table() {
    let c = conf(&[(
        "/bad.conf",
        "[[registry]]\nprefix = \"a.lan/x\"\nlocation = \"B.LAN/Upper\"\n",
    )]);
    let e = c
        .pull_endpoints(&r("a.lan/x/app:1"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "registry \"a.lan/x\" in /bad.conf rewrites a.lan/x/app:1 to B.LAN/Upper/app:1"
        ),
        "{e}"
    );
}

#[test]
fn files_are_found_where_containers_image_looks() {
    let d = tempfile::tempdir().unwrap();
    let system = d.path().join("etc");
    let home = d.path().join("home");
    let xdg = d.path().join("xdg");
    let env = |vars: Vec<(&'static str, PathBuf)>| {
        move |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone().into_os_string())
        }
    };
    // Nothing of the user's: the system file, then both drop-in directories.
    let f = ConfFiles::locate(env(vec![("HOME", home.clone())]), &system);
    assert_eq!(f.main, system.join("registries.conf"));
    assert_eq!(
        f.dirs,
        [
            system.join("registries.conf.d"),
            home.join(".config/containers/registries.conf.d")
        ]
    );
    // The user's file exists: it alone, with the user's drop-ins only.
    std::fs::create_dir_all(xdg.join("containers/registries.conf.d")).unwrap();
    std::fs::write(
        xdg.join("containers/registries.conf"),
        "[[registry]]\nlocation = \"u.lan\"\nblocked = true\n",
    )
    .unwrap();
    let vars = vec![("HOME", home.clone()), ("XDG_CONFIG_HOME", xdg.clone())];
    let f = ConfFiles::locate(env(vars.clone()), &system);
    assert_eq!(f.main, xdg.join("containers/registries.conf"));
    assert_eq!(f.dirs, [xdg.join("containers/registries.conf.d")]);
    // Drop-ins in name order; not `.conf`, not read.
    let dropins = xdg.join("containers/registries.conf.d");
    std::fs::write(
        dropins.join("20-b.conf"),
        "[[registry]]\nlocation = \"u.lan\"\ninsecure = true\n",
    )
    .unwrap();
    std::fs::write(
        dropins.join("10-a.conf"),
        "[[registry]]\nlocation = \"a.lan\"\n",
    )
    .unwrap();
    std::fs::write(dropins.join("30-c.conf.bak"), "not toml [").unwrap();
    let c = RegistriesConf::load(&f).unwrap();
    assert_eq!(
        c.files(),
        [
            xdg.join("containers/registries.conf"),
            dropins.join("10-a.conf"),
            dropins.join("20-b.conf")
        ]
    );
    // 20-b replaced the main file's u.lan table: no longer blocked.
    assert_eq!(pulls(&c, "u.lan/x:1"), ["insecure:u.lan/x:1"]);
    // CONTAINERS_REGISTRIES_CONF names the main file; a missing one is an error.
    let mut vars = vars;
    vars.push(("CONTAINERS_REGISTRIES_CONF", d.path().join("none.conf")));
    let f = ConfFiles::locate(env(vars), &system);
    assert_eq!(f.main, d.path().join("none.conf"));
    assert!(matches!(
        RegistriesConf::load(&f),
        Err(RegistriesConfError::Read { .. })
    ));
    // A missing system file is no error.
    let f = ConfFiles::locate(env(vec![]), &system);
    assert_eq!(RegistriesConf::load(&f).unwrap(), RegistriesConf::default());
}

#[test]
fn only_a_host_that_is_no_tables_location_is_mirror_only() {
    let c = conf(&[(
        "/m.conf",
        r#"
[[registry]]
prefix = "example.com/team"
location = "loc.lan/team"
[[registry.mirror]]
location = "mirror.lan:5000/t"
[[registry.mirror]]
location = "shared.lan"

[[registry]]
location = "shared.lan"
"#,
    )]);
    assert!(c.is_mirror_only("mirror.lan:5000"));
    assert!(
        !c.is_mirror_only("mirror.lan"),
        "another port is another host"
    );
    // Also a location (its own pulls have nothing after it): tried in full.
    assert!(!c.is_mirror_only("shared.lan"));
    assert!(!c.is_mirror_only("loc.lan"));
    assert!(!RegistriesConf::default().is_mirror_only("mirror.lan:5000"));
}

#[test]
fn a_prefix_that_takes_the_tag_or_digest_must_leave_one_in_the_location() {
    let h = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let c = conf(&[(
        "/pin.conf",
        &format!(
            "[[registry]]\nprefix = \"a.lan/x@{h}\"\nlocation = \"b.lan/x\"\n\
             [[registry]]\nprefix = \"a.lan/y:1\"\nlocation = \"b.lan/y\"\n\
             [[registry]]\nprefix = \"a.lan/z:1\"\nlocation = \"b.lan/z:2\"\n\
             [[registry]]\nprefix = \"a.lan/w@{h}\"\nlocation = \"b.lan/w@{h}\"\n\
             [[registry]]\nprefix = \"a.lan/v:1\"\nlocation = \"b.lan/v@{h}\"\n"
        ),
    )]);
    // Found by the registries_conf fuzz target: the digest pin was dropped and
    // the pull went to b.lan/x:latest.
    let e = c
        .pull_endpoints(&r(&format!("a.lan/x@{h}")))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("a pull by digest must keep its digest"), "{e}");
    let e = c.push_endpoint(&r("a.lan/y:1")).unwrap_err().to_string();
    assert!(e.ends_with("so the location must name one too"), "{e}");
    // Nor may a pull by tag be turned into one by digest.
    let e = c.pull_endpoints(&r("a.lan/v:1")).unwrap_err().to_string();
    assert!(e.ends_with("a pull by tag must stay a pull by tag"), "{e}");
    // A location naming its own tag, or the same digest, is what was asked for.
    assert_eq!(pulls(&c, "a.lan/z:1"), ["b.lan/z:2"]);
    assert_eq!(pulls(&c, &format!("a.lan/w@{h}")), [format!("b.lan/w@{h}")]);
    // A prefix that stops at the repository keeps the name's own tag or digest.
    assert_eq!(pulls(&c, "a.lan/y:7"), ["a.lan/y:7"]);
}
