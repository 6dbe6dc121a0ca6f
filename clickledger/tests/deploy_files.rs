//! The deployment files (`deploy/Dockerfile`, `deploy/compose/`, `deploy/k8s/`,
//! `deploy/grafana/`), checked offline against the code: every setting they give a binary is
//! one it accepts (`clickledger::cli::binaries`), every probe and health check asks a
//! listener for a path it serves (`clickledger::cli::listeners`), every image is pinned, the
//! compose services' dependencies hold, the Kubernetes workloads keep the rules of
//! docs/OPERATIONS.md, and the dashboard queries only metrics a binary exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// Variables every binary reads besides its own settings: the log filter and the wire
/// version setting (`docs/EVENTS.md`).
const ALSO_READ: &[&str] = &["RUST_LOG", "CLICKLEDGER_WIRE_VERSION"];

/// How long the edge lets in-flight requests finish after its grace period.
const EDGE_DRAIN_SECONDS: u64 = 10;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = Value::deserialize(document).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            value.apply_merge().unwrap();
            value
        })
        .filter(|value| !value.is_null())
        .collect()
}

use serde::Deserialize;

fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{extension} files in deploy/{dir}");
    files
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |value, key| &value[*key])
}

/// The settings a binary accepts: its variables and its `--flags`.
struct Accepted {
    variables: BTreeSet<String>,
    flags: BTreeSet<String>,
}

fn accepted() -> BTreeMap<&'static str, Accepted> {
    clickledger::cli::binaries()
        .into_iter()
        .map(|(name, command)| {
            let variables = command
                .get_arguments()
                .filter_map(|argument| argument.get_env()?.to_str().map(str::to_string))
                .chain(ALSO_READ.iter().map(|variable| variable.to_string()))
                .collect();
            let flags = command
                .get_arguments()
                .filter_map(|argument| argument.get_long())
                .map(|flag| format!("--{flag}"))
                .collect();
            (name, Accepted { variables, flags })
        })
        .collect()
}

/// An image reference names a release: a tag with a version number (`12.11`, `4.1.0`,
/// `v3.5.0`), not `latest` or a floating name (`bookworm-slim`, `25`).
fn assert_pinned(image: &str, whereabouts: &str) {
    let tag = image.rsplit_once(':').map(|(_, tag)| tag).filter(|tag| !tag.contains('/'));
    let pinned = tag.is_some_and(|tag| {
        let version = tag.trim_start_matches('v');
        let parts: Vec<&str> = version.split(['-', '@']).next().unwrap().split('.').collect();
        parts.len() >= 2 && parts.iter().all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
    });
    assert!(pinned, "{whereabouts}: image {image} is not pinned to a release (name:MAJOR.MINOR[.PATCH])");
}

/// Our own image carries the workspace's version.
fn assert_our_image(image: &str, whereabouts: &str) {
    assert_eq!(image, format!("clickledger:{}", env!("CARGO_PKG_VERSION")), "{whereabouts}");
}

/// A binary's settings as a deployment file gives them: `--flags` in its command and
/// variables in its environment. Every one is accepted; returns the variables' values.
fn check_settings(
    binary: &str,
    arguments: &[String],
    variables: &BTreeMap<String, String>,
    whereabouts: &str,
) -> BTreeMap<String, String> {
    let accepted = accepted();
    let accepted =
        accepted.get(binary).unwrap_or_else(|| panic!("{whereabouts}: {binary} is not a clickledger binary"));
    for argument in arguments.iter().filter(|argument| argument.starts_with("--")) {
        let flag = argument.split('=').next().unwrap();
        assert!(accepted.flags.contains(flag), "{whereabouts}: {binary} has no flag {flag}");
    }
    for variable in variables.keys() {
        assert!(accepted.variables.contains(variable), "{whereabouts}: {binary} does not read {variable}");
    }
    variables.clone()
}

/// `path` on `port` is a listener of `binary` (its variable set to an address with that port)
/// that serves `path`.
fn assert_served(binary: &str, settings: &BTreeMap<String, String>, port: u16, path: &str, whereabouts: &str) {
    let listeners = clickledger::cli::listeners(binary);
    let listener = listeners
        .iter()
        .find(|listener| {
            settings.get(listener.variable).is_some_and(|address| address.rsplit(':').next() == Some(&port.to_string()))
        })
        .unwrap_or_else(|| panic!("{whereabouts}: no listener of {binary} is set to port {port} ({settings:?})"));
    assert!(
        listener.paths.iter().any(|served| served == path),
        "{whereabouts}: {binary}'s {} does not serve {path} (it serves {:?})",
        listener.variable,
        listener.paths
    );
}

fn parse_url(url: &str) -> (String, u16, String) {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("{url} is not http://"));
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let (host, port) = authority.split_once(':').unwrap_or((authority, "80"));
    (host.to_string(), port.parse().unwrap(), path)
}

mod dockerfile {
    use super::*;

    #[test]
    fn the_image_holds_every_binary_on_pinned_bases() {
        let dockerfile = read(&deploy().join("Dockerfile"));
        let bases: Vec<&str> = dockerfile
            .lines()
            .filter_map(|line| line.strip_prefix("FROM "))
            .map(|line| line.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(bases.len(), 2, "a build stage and a runtime stage");
        for base in bases {
            assert_pinned(base, "deploy/Dockerfile");
        }
        let built: BTreeSet<&str> = dockerfile
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|pair| pair[0] == "--bin")
            .map(|pair| pair[1])
            .collect();
        let binaries: BTreeSet<&str> = clickledger::cli::binaries().into_iter().map(|(name, _)| name).collect();
        assert_eq!(built, binaries, "the image builds every binary");
        let copied = dockerfile.lines().find(|line| line.starts_with("COPY --from=build")).unwrap();
        for binary in &binaries {
            assert!(copied.contains(&format!("/out/{binary} ")), "the runtime image lacks {binary}");
        }
    }
}

mod compose {
    use super::*;

    fn services(file: &Path) -> BTreeMap<String, Value> {
        let documents = yaml_documents(file);
        let services = documents[0]["services"].as_mapping().unwrap();
        services.iter().map(|(name, service)| (text(name), service.clone())).collect()
    }

    fn environment(service: &Value) -> BTreeMap<String, String> {
        match &service["environment"] {
            Value::Mapping(map) => map.iter().map(|(key, value)| (text(key), text(value))).collect(),
            Value::Null => BTreeMap::new(),
            other => panic!("environment as a map, not {other:?}"),
        }
    }

    fn strings(value: &Value) -> Vec<String> {
        value.as_sequence().map(|items| items.iter().map(text).collect()).unwrap_or_default()
    }

    #[test]
    fn every_compose_service_is_pinned_configured_as_its_binary_reads_and_checked_where_it_listens() {
        for file in files("compose", "yaml") {
            let whereabouts = file.file_name().unwrap().to_string_lossy().to_string();
            let services = services(&file);
            assert!(!services.is_empty(), "{whereabouts}: no services");
            for (name, service) in &services {
                let whereabouts = format!("{whereabouts}: {name}");
                let image = text(&service["image"]);
                if image.starts_with("clickledger:") {
                    assert_our_image(&image, &whereabouts);
                    let command = strings(&service["command"]);
                    let binary = command.first().unwrap_or_else(|| panic!("{whereabouts}: no command"));
                    let settings = check_settings(binary, &command[1..], &environment(service), &whereabouts);
                    let check = strings(&service["healthcheck"]["test"]);
                    assert_eq!(
                        check.get(..3),
                        Some(&["CMD".to_string(), "curl".into(), "-fsS".into()][..]),
                        "{whereabouts}"
                    );
                    let (host, port, path) = parse_url(&check[3]);
                    assert_eq!(host, "127.0.0.1", "{whereabouts}");
                    assert_served(binary, &settings, port, &path, &whereabouts);
                } else {
                    assert_pinned(&image, &whereabouts);
                }
                // Dependencies name services of the file; a wait for health needs a health check.
                let depends_on: Vec<(String, Option<String>)> = match &service["depends_on"] {
                    Value::Sequence(names) => names.iter().map(|name| (text(name), None)).collect(),
                    Value::Mapping(map) => map
                        .iter()
                        .map(|(name, how)| (text(name), how["condition"].as_str().map(str::to_string)))
                        .collect(),
                    Value::Null => Vec::new(),
                    other => panic!("{whereabouts}: depends_on {other:?}"),
                };
                for (dependency, condition) in &depends_on {
                    let target =
                        services.get(dependency).unwrap_or_else(|| panic!("{whereabouts}: no service {dependency}"));
                    if condition.as_deref() == Some("service_healthy") {
                        assert!(!target["healthcheck"].is_null(), "{whereabouts}: {dependency} has no health check");
                    }
                }
                // The services it connects to are in the file and started before it.
                let environment = environment(service);
                let mut connects = Vec::new();
                if let Some(brokers) = environment.get("CLICKLEDGER_KAFKA_BROKERS") {
                    connects.extend(brokers.split(',').map(|broker| broker.split(':').next().unwrap().to_string()));
                }
                if let Some(url) = environment.get("CLICKLEDGER_CLICKHOUSE_URL") {
                    connects.push(parse_url(url).0);
                }
                for host in connects {
                    assert!(services.contains_key(&host), "{whereabouts}: connects to {host}, not a service");
                    assert!(
                        depends_on.iter().any(|(dependency, _)| *dependency == host),
                        "{whereabouts}: connects to {host} without depending on it"
                    );
                }
            }
        }
    }

    #[test]
    fn prometheus_scrapes_every_clickledger_service_where_it_serves_metrics() {
        let services = services(&deploy().join("compose/scale.yaml"));
        let prometheus = &yaml_documents(&deploy().join("compose/prometheus.yml"))[0];
        let mut scraped = BTreeSet::new();
        for job in prometheus["scrape_configs"].as_sequence().unwrap() {
            for target in job["static_configs"][0]["targets"].as_sequence().unwrap() {
                let (host, port, _) = parse_url(&format!("http://{}", text(target)));
                let service = services.get(&host).unwrap_or_else(|| panic!("prometheus scrapes {host}, not a service"));
                let binary = text(&service["command"][0]);
                assert_served(&binary, &environment(service), port, "/metrics", &format!("prometheus: {host}"));
                scraped.insert(host);
            }
        }
        let ours: BTreeSet<String> = services
            .iter()
            .filter(|(_, service)| text(&service["image"]).starts_with("clickledger:"))
            .map(|(name, _)| name.clone())
            .collect();
        assert_eq!(scraped, ours, "every clickledger service is scraped");
    }
}

mod kubernetes {
    use super::*;

    struct Manifests {
        objects: Vec<Value>,
    }

    impl Manifests {
        fn load() -> Self {
            let objects: Vec<Value> = files("k8s", "yaml")
                .iter()
                .filter(|file| !file.ends_with("kustomization.yaml"))
                .flat_map(|file| yaml_documents(file))
                .collect();
            Self { objects }
        }

        fn of_kind(&self, kind: &str) -> Vec<&Value> {
            self.objects.iter().filter(|object| object["kind"].as_str() == Some(kind)).collect()
        }

        fn named(&self, kind: &str, name: &str) -> &Value {
            self.of_kind(kind)
                .into_iter()
                .find(|object| object["metadata"]["name"].as_str() == Some(name))
                .unwrap_or_else(|| panic!("no {kind} {name}"))
        }

        /// The variables a container gets: `env` values and every key of the ConfigMaps and
        /// Secrets of `envFrom`.
        fn environment(&self, container: &Value) -> BTreeMap<String, String> {
            let mut variables = BTreeMap::new();
            for source in container["envFrom"].as_sequence().into_iter().flatten() {
                let (kind, reference, field) = if !source["configMapRef"].is_null() {
                    ("ConfigMap", &source["configMapRef"], "data")
                } else {
                    ("Secret", &source["secretRef"], "stringData")
                };
                let object = self.named(kind, reference["name"].as_str().unwrap());
                for (key, value) in object[field].as_mapping().unwrap() {
                    variables.insert(text(key), text(value));
                }
            }
            for variable in container["env"].as_sequence().into_iter().flatten() {
                variables.insert(text(&variable["name"]), text(&variable["value"]));
            }
            variables
        }
    }

    fn labels(object: &Value) -> BTreeMap<String, String> {
        object
            .as_mapping()
            .map(|map| map.iter().map(|(key, value)| (text(key), text(value))).collect())
            .unwrap_or_default()
    }

    fn selects(selector: &Value, deployment: &Value) -> bool {
        let wanted = labels(&selector["matchLabels"]);
        let have = labels(get(deployment, &["spec", "template", "metadata", "labels"]));
        !wanted.is_empty() && wanted.iter().all(|(key, value)| have.get(key) == Some(value))
    }

    #[test]
    fn every_workload_is_pinned_configured_as_its_binary_reads_and_probed_where_it_listens() {
        let manifests = Manifests::load();
        let deployments = manifests.of_kind("Deployment");
        let names: BTreeSet<&str> =
            deployments.iter().map(|deployment| deployment["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, BTreeSet::from(["api", "attributor", "ingest", "notifier", "settler"]));
        for deployment in &deployments {
            let name = deployment["metadata"]["name"].as_str().unwrap();
            let spec = get(deployment, &["spec", "template", "spec"]);
            assert!(selects(&deployment["spec"]["selector"], deployment), "{name}: the selector misses its pods");
            for container in spec["containers"].as_sequence().unwrap() {
                let whereabouts = format!("k8s {name}");
                let image = text(&container["image"]);
                assert_our_image(&image, &whereabouts);
                let command: Vec<String> = container["command"].as_sequence().unwrap().iter().map(text).collect();
                let arguments: Vec<String> = container["args"].as_sequence().into_iter().flatten().map(text).collect();
                let settings = check_settings(&command[0], &arguments, &manifests.environment(container), &whereabouts);
                let ports: BTreeMap<String, u16> = container["ports"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|port| (text(&port["name"]), port["containerPort"].as_u64().unwrap() as u16))
                    .collect();
                for probe in ["readinessProbe", "livenessProbe"] {
                    let check = &container[probe]["httpGet"];
                    assert!(!check.is_null(), "{whereabouts}: no {probe}");
                    let port = ports.get(&text(&check["port"])).copied().unwrap_or_else(|| {
                        text(&check["port"]).parse().unwrap_or_else(|_| panic!("{whereabouts}: {probe} port"))
                    });
                    assert_served(
                        &command[0],
                        &settings,
                        port,
                        &text(&check["path"]),
                        &format!("{whereabouts} {probe}"),
                    );
                }
            }
        }
    }

    #[test]
    fn the_edge_scales_and_drains_the_stages_fit_their_partitions_and_the_api_is_one() {
        let manifests = Manifests::load();
        let replicas = |name: &str| manifests.named("Deployment", name)["spec"]["replicas"].as_u64().unwrap();
        let container =
            |name: &str| &get(manifests.named("Deployment", name), &["spec", "template", "spec"])["containers"][0];

        // The edge: scaled by an autoscaler, ready at /readyz, alive at /healthz, and given the
        // time to drain at termination.
        let autoscaler = manifests.named("HorizontalPodAutoscaler", "ingest");
        let target = &autoscaler["spec"]["scaleTargetRef"];
        assert_eq!((target["kind"].as_str(), target["name"].as_str()), (Some("Deployment"), Some("ingest")));
        assert!(autoscaler["spec"]["minReplicas"].as_u64().unwrap() >= 2);
        let ingest = container("ingest");
        assert_eq!(ingest["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
        assert_eq!(ingest["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
        let grace_ms: u64 = manifests.environment(ingest)["CLICKLEDGER_SHUTDOWN_GRACE_MS"].parse().unwrap();
        let period = get(
            manifests.named("Deployment", "ingest"),
            &["spec", "template", "spec", "terminationGracePeriodSeconds"],
        );
        assert!(
            period.as_u64().unwrap() * 1000 >= grace_ms + EDGE_DRAIN_SECONDS * 1000,
            "the pod's grace period covers CLICKLEDGER_SHUTDOWN_GRACE_MS and the drain"
        );

        // The stages: no more consumers than partitions.
        let partitions: u64 = manifests.named("ConfigMap", "clickledger-log")["data"]["CLICKLEDGER_PARTITIONS"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(replicas("attributor") <= partitions);
        assert!(replicas("notifier") <= partitions);
        // Set explicitly: by default a settler runs one instance per core of its node.
        let instances: u64 = manifests
            .environment(container("settler"))
            .get("CLICKLEDGER_SETTLER_INSTANCES")
            .expect("the settler's instances are set")
            .parse()
            .unwrap();
        assert!(replicas("settler") * instances <= partitions);

        // The API: one process, replaced rather than rolled (two would each accept changes).
        assert_eq!(replicas("api"), 1);
        assert_eq!(manifests.named("Deployment", "api")["spec"]["strategy"]["type"].as_str(), Some("Recreate"));

        // Every workload has a disruption budget that selects it; every Service reaches a
        // named port of the pods it selects.
        for deployment in manifests.of_kind("Deployment") {
            let name = deployment["metadata"]["name"].as_str().unwrap();
            assert!(
                manifests
                    .of_kind("PodDisruptionBudget")
                    .iter()
                    .any(|budget| selects(&budget["spec"]["selector"], deployment)),
                "{name} has no PodDisruptionBudget"
            );
        }
        for service in manifests.of_kind("Service") {
            let name = service["metadata"]["name"].as_str().unwrap();
            let selector = Value::Mapping(
                [(Value::from("matchLabels"), service["spec"]["selector"].clone())].into_iter().collect(),
            );
            let deployment = manifests
                .of_kind("Deployment")
                .into_iter()
                .find(|deployment| selects(&selector, deployment))
                .unwrap_or_else(|| panic!("Service {name} selects no pods"));
            let ports: Vec<String> = get(deployment, &["spec", "template", "spec"])["containers"][0]["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|port| text(&port["name"]))
                .collect();
            for port in service["spec"]["ports"].as_sequence().unwrap() {
                assert!(ports.contains(&text(&port["targetPort"])), "Service {name}: no port {:?}", port["targetPort"]);
            }
        }
    }

    #[test]
    fn kustomize_lists_every_manifest() {
        let kustomization = &yaml_documents(&deploy().join("k8s/kustomization.yaml"))[0];
        let listed: BTreeSet<String> = kustomization["resources"].as_sequence().unwrap().iter().map(text).collect();
        let present: BTreeSet<String> = files("k8s", "yaml")
            .iter()
            .map(|file| file.file_name().unwrap().to_string_lossy().to_string())
            .filter(|name| name != "kustomization.yaml")
            .collect();
        assert_eq!(listed, present);
    }
}

mod grafana {
    use super::*;

    /// The metric names a PromQL expression reads (`clickledger_...`), a histogram's
    /// `_bucket`, `_sum` and `_count` series by the histogram's name.
    fn metrics_of(expression: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = expression;
        while let Some(at) = rest.find("clickledger_") {
            let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            rest = &rest[at + name.len()..];
            let base =
                ["_bucket", "_sum", "_count"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(&name);
            names.push(base.to_string());
        }
        names
    }

    pub fn dashboard_metrics() -> BTreeSet<String> {
        let dashboard: serde_json::Value =
            serde_json::from_str(&read(&deploy().join("grafana/clickledger.json"))).unwrap();
        let mut metrics = BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expression = target["expr"].as_str().unwrap();
                let found = metrics_of(expression);
                assert!(!found.is_empty(), "{}: {expression} reads no clickledger metric", panel["title"]);
                metrics.extend(found);
            }
        }
        metrics
    }

    #[test]
    fn the_dashboard_queries_only_metrics_a_binary_exports_and_charts_every_stage_concern() {
        let metrics = dashboard_metrics();
        let exported: BTreeSet<&str> = clickledger::cli::metric_names().into_iter().collect();
        for metric in &metrics {
            assert!(exported.contains(metric.as_str()), "the dashboard queries {metric}, which no binary exports");
        }
        for needed in [
            pipeline::metrics::RECORDS,
            pipeline::metrics::LAG_MESSAGES,
            pipeline::metrics::BATCH_SECONDS,
            pipeline::metrics::WRITE_SECONDS,
            pipeline::metrics::REJECTIONS,
            ingest::metrics::REQUESTS,
            ingest::metrics::REJECTED,
            api::metrics::REQUESTS,
            notifier::metrics::DELIVERIES,
            notifier::metrics::ATTEMPT_SECONDS,
            notifier::metrics::QUEUE_AGE_SECONDS,
        ] {
            assert!(metrics.contains(needed), "the dashboard does not chart {needed}");
        }
        assert_eq!(metrics_of("rate(clickledger_stage_apply_seconds_bucket[5m])"), ["clickledger_stage_apply_seconds"]);
    }

    /// The series names of a Prometheus scrape, as they are (`..._bucket` of a histogram).
    fn scraped(text: &str) -> BTreeSet<String> {
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| line.split(['{', ' ']).next().unwrap().to_string())
            .collect()
    }

    /// The series names the dashboard reads, as written (a histogram's `_bucket`).
    fn dashboard_series() -> BTreeSet<String> {
        let dashboard: serde_json::Value =
            serde_json::from_str(&read(&deploy().join("grafana/clickledger.json"))).unwrap();
        let mut series = BTreeSet::new();
        for target in dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        {
            let mut rest = target["expr"].as_str().unwrap();
            while let Some(at) = rest.find("clickledger_") {
                let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                rest = &rest[at + name.len()..];
                series.insert(name);
            }
        }
        series
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_metric_the_dashboard_queries_is_in_a_scrape_of_a_running_clickledger() {
        let app = api_support::start().await;
        let (edge, api) = (app.edge(), app.api());
        // A webhook told of the purchase's commission.
        let receiver = testkit::receiver::Receiver::start(|_| testkit::receiver::Reply::Status(200)).await;
        let webhook =
            serde_json::json!({"id": "metrics", "url": receiver.url("/hooks"), "events": ["commission.created"]});
        api_support::admin(api, "POST", "/v1/webhooks", Some(webhook), 201).await;
        // A click and a purchase, a pixel nobody clicked for (rejected by the attributor), a
        // refused request at the edge and one at the API.
        let shopper = common::Shopper::new("metrics");
        let click = shopper.get(edge, "/c?offer=summer&member=jane").await;
        assert_eq!(click.status, 302);
        let visitor = click.visitor();
        let pixel = shopper.get_with_cookie(edge, "/px?offer=summer&order_id=M-1&amount=20.00", &visitor).await;
        assert_eq!(pixel.status, 200);
        assert_eq!(common::get(edge, "/px?offer=summer&order_id=M-2&amount=20.00").await.status, 200);
        assert_eq!(common::get(edge, "/c?offer=nope&member=jane").await.status, 404);
        assert_eq!(api_support::call(api, "GET", "/v1/offers", Some("not-a-key"), None).await.0, 401);
        api_support::eventually(api, "/v1/conversions/rejected", "the rejected pixel", |page| {
            !api_support::items(page).is_empty()
        })
        .await;

        // As written: a histogram the dashboard reads by its buckets must export buckets (not
        // a summary's quantiles).
        let wanted = dashboard_series();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let scrape = common::get(edge, "/metrics").await;
            assert_eq!(scrape.status, 200);
            let exported = scraped(&scrape.body);
            let missing: Vec<&String> = wanted.difference(&exported).collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the dashboard queries {missing:?}, which a running clickledger does not export"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}
