//! What deploy/ ships holds together: the Kubernetes example's config passes `sluice check`,
//! its probes, reload, shutdown and security settings are the ones docs/operations.md
//! describes, and the container image runs as a non-root user. (Building the image needs a
//! Docker daemon, which CI does not have.)
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn manifests() -> Vec<Value> {
    let text = std::fs::read_to_string(repo("deploy/kubernetes/sluice.yaml")).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in deploy/kubernetes/sluice.yaml"))
}

#[test]
fn the_kubernetes_example_checks_and_drains() {
    let docs = manifests();
    let config = kind(&docs, "ConfigMap")["data"]["krakend.json"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::Builder::new()
        .prefix("sluice-deploy-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("krakend.json");
    std::fs::write(&path, &config).unwrap();
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let pod = &kind(&docs, "Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.contains(&"--watch"), "{args:?}");
    // Mounted as a directory: a subPath mount never sees the ConfigMap change.
    let mount = &container["volumeMounts"][0];
    assert!(mount.get("subPath").is_none());
    assert_eq!(
        Path::new(args.last().unwrap()).parent(),
        Some(Path::new(mount["mountPath"].as_str().unwrap()))
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/__health", "{probe}");
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);

    // The grace period covers the preStop sleep and the config's drain.
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let drain: u64 = config["max_shutdown_wait_time"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    let sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(grace > sleep + drain, "{grace} <= {sleep} + {drain}");

    let pdb = &kind(&docs, "PodDisruptionBudget")["spec"];
    let replicas = kind(&docs, "Deployment")["spec"]["replicas"]
        .as_u64()
        .unwrap();
    assert!(pdb["minAvailable"].as_u64().unwrap() < replicas);
    let hpa = &kind(&docs, "HorizontalPodAutoscaler")["spec"];
    assert_eq!(hpa["metrics"][0]["resource"]["name"], "cpu");
    assert!(hpa["minReplicas"].as_u64().unwrap() >= replicas);
}

#[test]
fn the_image_runs_as_a_non_root_user_from_a_separate_stage() {
    let dockerfile = std::fs::read_to_string(repo("deploy/Dockerfile")).unwrap();
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "a multi-stage build");
    let final_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    let user = final_stage
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the final stage sets USER");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    assert!(final_stage.contains("COPY --from=build"));
}
