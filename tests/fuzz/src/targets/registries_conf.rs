//! registries.conf (containers-registries.conf(5)): the parser never panics, and
//! for any name the resolver answers sensibly: a pull reads from at least one
//! endpoint (mirrors first, the location last) unless the name is blocked, a push
//! goes to that same location and never to a mirror, and a name no table matches
//! is read where it says.
//!
//! Input: a registries.conf text. Its comment lines `#ref NAME` are names to
//! resolve (TOML ignores them); names made from each table's prefix are added so
//! that matches are reached without the fuzzer guessing them.

use std::path::Path;

use ocibench::oci::reference::ImageReference;
use ocibench::oci::registry::{RegistriesConf, RegistryError};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(conf) = RegistriesConf::from_texts([(Path::new("/fuzz.conf"), text)]) else {
        return;
    };
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#ref "))
        .map(str::to_string)
        .collect();
    for t in conf.registries() {
        let host = t
            .prefix
            .strip_prefix('*')
            .map_or(t.prefix.clone(), |d| format!("sub{d}"));
        names.push(format!("{host}/app:1"));
        names.push(format!(
            "{host}/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ));
        names.push(host);
    }
    for name in names {
        let Ok(image) = name.parse::<ImageReference>() else {
            continue;
        };
        check(&conf, &image);
    }
}

fn check(conf: &RegistriesConf, image: &ImageReference) {
    let table = conf.find(image).map(|(t, _)| t);
    let pull = conf.pull_endpoints(image);
    let push = conf.push_endpoint(image);
    match (&pull, &push) {
        (Ok(pull), Ok(push)) => {
            let (location, mirrors) = pull.split_last().expect("a pull with no endpoint");
            assert!(!location.mirror, "{image}: a pull ends at a mirror");
            assert!(
                mirrors.iter().all(|m| m.mirror),
                "{image}: location among mirrors"
            );
            assert!(!push.mirror, "{image}: a push to a mirror");
            assert_eq!(
                &push.reference, &location.reference,
                "{image}: push and pull locations differ"
            );
            if table.is_none() {
                assert_eq!(pull.len(), 1, "{image}: mirrors without a table");
                assert_eq!(&push.reference, image, "{image}: rewritten without a table");
            }
            // The kind of pull (by tag or digest) survives rewriting.
            for e in pull {
                assert_eq!(
                    e.reference.digest(),
                    image.digest(),
                    "{image}: digest changed"
                );
            }
        }
        (Err(RegistryError::Blocked { .. }), Err(RegistryError::Blocked { .. })) => {
            assert!(
                table.is_some_and(|t| t.blocked),
                "{image}: blocked by no blocked table"
            );
        }
        (Err(RegistryError::BadRewrite(_)), _) | (_, Err(RegistryError::BadRewrite(_))) => {
            assert!(table.is_some(), "{image}: a rewrite without a table");
        }
        (pull, push) => panic!("{image}: pull {pull:?} and push {push:?} disagree"),
    }
}
