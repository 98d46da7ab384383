//! The human text of `ocibench inspect`: the image's identity, the platforms of
//! its index, its config (what a container of it runs), its layers and history.

use std::io::Write;

use serde_json::Value;

use crate::oci::inspect::Inspection;
use crate::report::units::thousands;

/// One config field's value on one line: strings as they are, arrays as JSON
/// (an exec form reads as the Dockerfile wrote it), maps as `k=v` or keys.
fn one_line(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| i.is_string()) => {
            serde_json::to_string(items).unwrap_or_default()
        }
        Value::Object(m) if m.values().all(|x| x.is_string()) => m
            .iter()
            .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", "),
        // ExposedPorts and Volumes: keys mapped to `{}`.
        Value::Object(m)
            if m.values()
                .all(|x| x.as_object().is_some_and(|o| o.is_empty())) =>
        {
            m.keys().cloned().collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// The config fields people look for, in the order a Dockerfile sets them.
const CONFIG_FIELDS: [(&str, &str); 10] = [
    ("Entrypoint", "entrypoint"),
    ("Cmd", "cmd"),
    ("User", "user"),
    ("WorkingDir", "workdir"),
    ("ExposedPorts", "exposed ports"),
    ("Volumes", "volumes"),
    ("StopSignal", "stop signal"),
    ("Healthcheck", "healthcheck"),
    ("Labels", "labels"),
    ("Env", "env"),
];

pub fn write_inspection(out: &mut dyn Write, i: &Inspection) -> std::io::Result<()> {
    writeln!(out, "{}", i.source)?;
    if let Some(name) = &i.name {
        writeln!(out, "  name           {name}")?;
    }
    writeln!(out, "  digest         {}", i.digest)?;
    writeln!(out, "  media type     {}", i.media_type)?;
    if !i.repo_tags.is_empty() {
        writeln!(out, "  tags           {}", i.repo_tags.join(", "))?;
    }
    if let Some(index) = &i.index {
        for (k, v) in &index.annotations {
            writeln!(out, "  annotation     {k}={v}")?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "  {:<18} {:<19} {:>10}  MEDIA TYPE",
            "PLATFORM", "MANIFEST", "SIZE"
        )?;
        for m in &index.manifests {
            let mut note = String::new();
            if m.attestation {
                note.push_str("  (attestation)");
            }
            if m.digest == index.chosen {
                note.push_str("  <- chosen");
            }
            writeln!(
                out,
                "  {:<18} {:<19} {:>10}  {}{note}",
                m.platform.as_deref().unwrap_or("-"),
                m.digest.short_named(),
                thousands(m.size),
                m.media_type
            )?;
        }
        writeln!(out)?;
        writeln!(out, "  manifest       {}", i.manifest_digest)?;
        writeln!(out, "  media type     {}", i.manifest_media_type)?;
    }
    let platform = [&i.os, &i.architecture, &i.variant]
        .iter()
        .filter_map(|p| p.as_deref())
        .collect::<Vec<_>>()
        .join("/");
    if !platform.is_empty() {
        writeln!(out, "  platform       {platform}")?;
    }
    if let Some(c) = &i.created {
        writeln!(out, "  created        {c}")?;
    }
    if let Some(a) = i.author.as_deref().filter(|a| !a.is_empty()) {
        writeln!(out, "  author         {a}")?;
    }
    for (field, label) in CONFIG_FIELDS {
        let Some(v) = i.config.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        match (field, v) {
            // One line each: environments and label sets are long.
            ("Env", Value::Array(items)) => {
                for item in items {
                    writeln!(out, "  {label:<14} {}", one_line(item))?;
                }
            }
            ("Labels", Value::Object(m)) => {
                for (k, x) in m {
                    writeln!(out, "  {label:<14} {k}={}", one_line(x))?;
                }
            }
            _ => writeln!(out, "  {label:<14} {}", one_line(v))?,
        }
    }
    if let Some(t) = &i.artifact_type {
        writeln!(out, "  artifact type  {t}")?;
    }
    if let Some(s) = &i.subject {
        writeln!(out, "  subject        {}", s.digest)?;
    }
    for (k, v) in &i.annotations {
        writeln!(out, "  annotation     {k}={v}")?;
    }
    writeln!(out)?;
    writeln!(out, "  {:<19} {:>14}  MEDIA TYPE", "LAYER", "SIZE")?;
    for l in &i.layers {
        writeln!(
            out,
            "  {:<19} {:>14}  {}",
            l.digest.short_named(),
            thousands(l.size),
            l.media_type
        )?;
    }
    if !i.history.is_empty() {
        writeln!(out)?;
        writeln!(out, "  {:<20}  {:<5}  CREATED BY", "CREATED", "EMPTY")?;
        for h in &i.history {
            let mut by = h.created_by.clone().unwrap_or_default();
            if let Some(c) = h.comment.as_deref().filter(|c| !c.is_empty()) {
                by.push_str(&format!("  # {c}"));
            }
            writeln!(
                out,
                "  {:<20}  {:<5}  {by}",
                h.created.as_deref().unwrap_or("-"),
                if h.empty_layer { "yes" } else { "" },
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::Digest;
    use crate::oci::inspect::{HistoryEntry, IndexEntryInfo, IndexInfo, LayerInfo};
    use serde_json::json;

    fn digest(b: &[u8]) -> Digest {
        Digest::of(b)
    }

    #[test]
    fn the_text_shows_platforms_config_layers_and_history() {
        let (top, amd, att, layer) = (digest(b"i"), digest(b"a"), digest(b"t"), digest(b"l"));
        let entry = |d: &Digest, platform: &str, attestation: bool| IndexEntryInfo {
            digest: d.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 1234,
            platform: Some(platform.into()),
            attestation,
            annotations: Default::default(),
        };
        let i = Inspection {
            name: Some("localhost:5000/app".into()),
            source: "localhost:5000/app:1".into(),
            digest: top.clone(),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            repo_tags: vec!["1".into(), "latest".into()],
            manifest_digest: amd.clone(),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            created: Some("1970-01-01T00:00:00Z".into()),
            author: None,
            docker_version: None,
            architecture: Some("amd64".into()),
            os: Some("linux".into()),
            variant: None,
            config: json!({
                "Entrypoint": ["/bin/sh", "-c"],
                "Env": ["A=1", "B=2"],
                "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                "Labels": {"k": "v"},
                "Healthcheck": {"Test": ["CMD", "true"]},
            }),
            history: vec![
                HistoryEntry {
                    created: Some("1970-01-01T00:00:00Z".into()),
                    created_by: Some("ADD x".into()),
                    ..Default::default()
                },
                HistoryEntry {
                    created_by: Some("ENV A=1".into()),
                    comment: Some("buildkit".into()),
                    empty_layer: true,
                    ..Default::default()
                },
            ],
            layers: vec![LayerInfo {
                digest: layer.clone(),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                size: 1_032_059,
                annotations: Default::default(),
            }],
            annotations: [(
                "org.opencontainers.image.title".to_string(),
                "t".to_string(),
            )]
            .into_iter()
            .collect(),
            artifact_type: None,
            subject: None,
            index: Some(IndexInfo {
                manifests: vec![
                    entry(&amd, "linux/amd64", false),
                    entry(&att, "unknown/unknown", true),
                ],
                chosen: amd.clone(),
                annotations: Default::default(),
            }),
            config_bytes: Vec::new(),
            raw_manifest: Vec::new(),
        };
        let mut out = Vec::new();
        write_inspection(&mut out, &i).unwrap();
        let text = String::from_utf8(out).unwrap();
        let expected = format!(
            "localhost:5000/app:1
  name           localhost:5000/app
  digest         {top}
  media type     application/vnd.oci.image.index.v1+json
  tags           1, latest

  PLATFORM           MANIFEST                  SIZE  MEDIA TYPE
  linux/amd64        sha256:{a}      1,234  application/vnd.oci.image.manifest.v1+json  <- chosen
  unknown/unknown    sha256:{t}      1,234  application/vnd.oci.image.manifest.v1+json  (attestation)

  manifest       {amd}
  media type     application/vnd.oci.image.manifest.v1+json
  platform       linux/amd64
  created        1970-01-01T00:00:00Z
  entrypoint     [\"/bin/sh\",\"-c\"]
  exposed ports  53/udp, 8080/tcp
  healthcheck    {{\"Test\":[\"CMD\",\"true\"]}}
  labels         k=v
  env            A=1
  env            B=2
  annotation     org.opencontainers.image.title=t

  LAYER                         SIZE  MEDIA TYPE
  sha256:{l}      1,032,059  application/vnd.oci.image.layer.v1.tar+gzip

  CREATED               EMPTY  CREATED BY
  1970-01-01T00:00:00Z         ADD x
  -                     yes    ENV A=1  # buildkit
",
            a = amd.short(),
            t = att.short(),
            l = layer.short(),
        );
        assert_eq!(text, expected);
    }
}
