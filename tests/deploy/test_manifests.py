"""deploy/k8s: each kustomization renders, validates strictly against the Kubernetes 1.33
schemas (kubernetes-validate's own, offline), and holds what a reviewer would check by hand.
No cluster runs here: nothing is applied."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from kubernetes_validate import utils as kubernetes_validate

from service.config import Settings
from tests.deploy.conftest import K8S, Rendered, render
from tests.support.live_server import ROOT

KUBERNETES_VERSION = "1.33"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
SECRET_KEYS = {"JWT_SECRET", "DATABASE_URL", "REDIS_URL", "SMTP_PASSWORD", "METRICS_TOKEN"}
SECRET_KEYS |= {"MFA_ENCRYPTION_KEY"}
# Read by the container's start (scripts/startup.py), not by Settings.
START_VARIABLES = {"WEB_CONCURRENCY", "GRACEFUL_TIMEOUT_SECONDS", "WAIT_TIMEOUT_SECONDS"}
START_VARIABLES |= {"HOST", "PORT", "PROMETHEUS_MULTIPROC_DIR"}
CONTROLLER_CONFIG = K8S / "ingress-nginx" / "controller-configmap.yaml"


# ---------------------------------------------------------------- helpers


def pod_templates(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{item['kind']}/{item['metadata']['name']}", item["spec"]["template"])
        for item in rendered.objects
        if item["kind"] in WORKLOADS
    ]


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels is used here: {selector}"
    wanted: dict[str, str] = selector.get("matchLabels", {})
    return bool(wanted) and wanted.items() <= labels.items()


def deployment(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("Deployment", "tasks-service")


def api_container(rendered: Rendered) -> dict[str, Any]:
    (container,) = deployment(rendered)["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def job(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("Job", "tasks-service-migrate")


def settings(rendered: Rendered) -> dict[str, str]:
    (ref,) = api_container(rendered)["envFrom"]
    data: dict[str, str] = rendered.one("ConfigMap", ref["configMapRef"]["name"])["data"]
    return data


def nginx_directives() -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for raw in (ROOT / "deploy" / "nginx.conf").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.endswith(";"):
            name, _, value = line[:-1].partition(" ")
            directives.setdefault(name, []).append(value.strip())
    return directives


def seconds(nginx_value: str) -> str:
    assert nginx_value.endswith("s"), nginx_value
    return nginx_value.removesuffix("s")


# ---------------------------------------------------------------- rendering and schemas


def test_each_kustomization_renders(rendered: dict[str, Rendered]) -> None:
    kinds = {name: {item["kind"] for item in result.objects} for name, result in rendered.items()}
    api = {"ServiceAccount", "ConfigMap", "Deployment", "Service", "Ingress"}
    api |= {"PodDisruptionBudget", "Job", "NetworkPolicy"}
    assert kinds["base"] == api | {"HorizontalPodAutoscaler"}
    assert kinds["production"] == api | {"HorizontalPodAutoscaler", "Namespace"}
    assert kinds["development"] == api | {"Namespace", "Secret", "StatefulSet"}
    for name in ("development", "production"):
        (namespace,) = rendered[name].of_kind("Namespace")
        namespaced = [item for item in rendered[name].objects if item["kind"] != "Namespace"]
        assert {item["metadata"]["namespace"] for item in namespaced} == {
            namespace["metadata"]["name"]
        }
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_kubernetes_validate_has_the_schemas_of_the_version_asked_for() -> None:
    assert f"{KUBERNETES_VERSION}.0" in kubernetes_validate.all_versions()


@pytest.mark.parametrize("name", ["base", "development", "production"])
def test_every_object_validates_strictly_against_kubernetes_1_33(
    rendered: dict[str, Rendered], name: str
) -> None:
    problems = []
    for item in rendered[name].objects:
        where = f"{item['kind']}/{item['metadata']['name']}"
        try:
            version = kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{where}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{where}: {error.message}")  # a CRD: no schema to check it with
        else:
            assert version == KUBERNETES_VERSION, where
    assert problems == []


def test_the_ingress_controller_settings_validate_too() -> None:
    (config,) = yaml.safe_load_all(CONTROLLER_CONFIG.read_text())
    assert kubernetes_validate.validate(config, KUBERNETES_VERSION, strict=True)


# ---------------------------------------------------------------- pods


def test_every_container_has_resources_and_a_restricted_security_context(
    overlay: Rendered,
) -> None:
    templates = pod_templates(overlay)
    assert templates
    for where, template in templates:
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False, where
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in containers(template):
            name = f"{where}/{container['name']}"
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, name
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["privileged"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert context.get("runAsUser", pod.get("runAsUser", 0)) > 0, name


def test_every_long_running_container_has_probes(overlay: Rendered) -> None:
    # A Job's container runs to completion: probes would have nothing to decide.
    for where, template in pod_templates(overlay):
        for container in containers(template):
            probes = {key for key in container if key.endswith("Probe")}
            expected = set() if where.startswith("Job/") else {"startup", "liveness", "readiness"}
            assert probes == {f"{probe}Probe" for probe in expected}, f"{where}/{container['name']}"


def test_the_api_probes_its_health_routes_on_the_image_s_port(overlay: Rendered) -> None:
    container = api_container(overlay)
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", 8000)
    assert "EXPOSE 8000" in (ROOT / "Dockerfile").read_text()
    gets = {probe: container[f"{probe}Probe"]["httpGet"] for probe in ("startup", "liveness")}
    gets["readiness"] = container["readinessProbe"]["httpGet"]
    paths = {probe: (get["path"], get["port"]) for probe, get in gets.items()}
    assert paths == {
        "startup": ("/health/live", "http"),
        "liveness": ("/health/live", "http"),  # never the dependencies: no restart storms
        "readiness": ("/health/ready", "http"),
    }
    # The start waits up to WAIT_TIMEOUT_SECONDS for PostgreSQL and Redis, then migrates.
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget > int(settings(overlay)["WAIT_TIMEOUT_SECONDS"]) + 30


def test_the_api_runs_as_the_image_s_user(overlay: Rendered) -> None:
    match = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile's USER is a numeric uid:gid"
    for template in (deployment(overlay)["spec"]["template"], job(overlay)["spec"]["template"]):
        pod = template["spec"]["securityContext"]
        assert (pod["runAsUser"], pod["runAsGroup"]) == (int(match[1]), int(match[2]))


def test_the_api_writes_only_to_empty_dirs(overlay: Rendered) -> None:
    spec = deployment(overlay)["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    container = api_container(overlay)
    mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"]}
    assert all("emptyDir" in volume for volume in mounts.values()), mounts
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"] in mounts  # prometheus-client's files
    assert "/tmp" in mounts  # noqa: S108 (Python's temporary files, in an emptyDir)
    image_default = "PROMETHEUS_MULTIPROC_DIR=" + env["PROMETHEUS_MULTIPROC_DIR"]
    assert image_default in (ROOT / "Dockerfile").read_text()


def test_endpoints_drain_before_uvicorn_stops(overlay: Rendered) -> None:
    spec = deployment(overlay)["spec"]
    pod = spec["template"]["spec"]
    pause = api_container(overlay)["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = int(settings(overlay)["GRACEFUL_TIMEOUT_SECONDS"])
    assert pause >= 5
    assert pod["terminationGracePeriodSeconds"] > pause + graceful
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_api_pods_spread_across_nodes(overlay: Rendered) -> None:
    template = deployment(overlay)["spec"]["template"]
    spreads = {
        constraint["topologyKey"]: constraint
        for constraint in template["spec"]["topologySpreadConstraints"]
    }
    by_node = spreads["kubernetes.io/hostname"]
    assert (by_node["maxSkew"], by_node["whenUnsatisfiable"]) == (1, "DoNotSchedule")
    assert selects(by_node["labelSelector"], template["metadata"]["labels"])


def test_prometheus_scrapes_the_api_port(overlay: Rendered) -> None:
    annotations = deployment(overlay)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    (port,) = api_container(overlay)["ports"]
    assert annotations["prometheus.io/port"] == str(port["containerPort"])


# ---------------------------------------------------------------- the objects around the pods


def test_the_hpa_targets_the_deployment(rendered: dict[str, Rendered]) -> None:
    production = rendered["production"]
    (hpa,) = production.of_kind("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    assert target["name"] == deployment(production)["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "replicas" not in deployment(production)["spec"]  # the HPA's to set
    development = rendered["development"]
    assert development.of_kind("HorizontalPodAutoscaler") == []
    assert deployment(development)["spec"]["replicas"] == 1


def test_the_pdb_service_and_policy_select_the_api_pods_only(overlay: Rendered) -> None:
    api_labels = deployment(overlay)["spec"]["template"]["metadata"]["labels"]
    migration_labels = job(overlay)["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment(overlay)["spec"]["selector"], api_labels)
    (pdb,) = overlay.of_kind("PodDisruptionBudget")
    service = overlay.one("Service", "tasks-service")
    policy = overlay.one("NetworkPolicy", "tasks-service-api")
    for selector in (pdb["spec"]["selector"], policy["spec"]["podSelector"]):
        assert selects(selector, api_labels) and not selects(selector, migration_labels)
    assert service["spec"]["selector"].items() <= api_labels.items()
    assert not service["spec"]["selector"].items() <= migration_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_the_migration_job_runs_the_deployment_s_image(overlay: Rendered) -> None:
    (migrate,) = job(overlay)["spec"]["template"]["spec"]["containers"]
    api = api_container(overlay)
    assert migrate["image"] == api["image"]
    assert migrate["imagePullPolicy"] == api["imagePullPolicy"]
    # The image's entrypoint stays (it runs a given command from /app, where alembic.ini is).
    assert "command" not in migrate
    assert migrate["args"] == ["alembic", "upgrade", "head"]
    assert [item["valueFrom"] for item in migrate["env"] if item["name"] == "DATABASE_URL"] == [
        item["valueFrom"] for item in api["env"] if item["name"] == "DATABASE_URL"
    ]
    assert job(overlay)["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_the_first_upgrade_step_applies_the_job_and_what_it_needs_not_the_api(
    overlay: Rendered,
) -> None:
    # docs/operations.md: `kubectl apply -k ... -l 'app.kubernetes.io/component!=api'`
    # first; `!=` also selects the objects without that label.
    first = {
        (item["kind"], item["metadata"]["name"])
        for item in overlay.objects
        if item["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "api"
    }
    assert ("Job", "tasks-service-migrate") in first
    assert ("NetworkPolicy", "tasks-service-migrate") in first
    assert ("Deployment", "tasks-service") not in first
    spec = job(overlay)["spec"]["template"]["spec"]
    assert ("ServiceAccount", spec["serviceAccountName"]) in first
    (migrate,) = spec["containers"]
    for item in migrate["env"]:
        assert ("Secret", item["valueFrom"]["secretKeyRef"]["name"]) in first or (
            overlay.name == "production"  # created before, by the operator
        )
    (namespace,) = overlay.of_kind("Namespace")
    assert ("Namespace", namespace["metadata"]["name"]) in first
    # The settings are in the first step as well, so the pods of the second find them.
    (ref,) = api_container(overlay)["envFrom"]
    assert ("ConfigMap", ref["configMapRef"]["name"]) in first


def test_production_runs_its_image_by_digest(rendered: dict[str, Rendered]) -> None:
    image = api_container(rendered["production"])["image"]
    assert re.fullmatch(r"[\w.-]+(/[\w.-]+)+@sha256:[0-9a-f]{64}", image), image


def test_only_the_oidc_component_opens_https_and_never_to_the_cluster(
    rendered: dict[str, Rendered], k8s_tree: Path, tmp_path: Path
) -> None:
    # The production overlay as an operator with OIDC_PROVIDERS set would make it.
    overlay = k8s_tree / "overlays" / "production-with-oidc"
    shutil.copytree(k8s_tree / "overlays" / "production", overlay)
    kustomization = overlay / "kustomization.yaml"
    added = "\ncomponents:\n  - ../../components/oidc-egress\n"
    kustomization.write_text(kustomization.read_text() + added)
    with_oidc = render(overlay, tmp_path / "with-oidc.yaml")

    def https_rules(result: Rendered) -> list[dict[str, Any]]:
        return [
            rule
            for policy in result.of_kind("NetworkPolicy")
            for rule in policy["spec"].get("egress", [])
            if any(port["port"] == 443 for port in rule.get("ports", []))
        ]

    for name in ("base", "development", "production"):
        assert https_rules(rendered[name]) == [], name
    (rule,) = https_rules(with_oidc)
    assert rule["ports"] == [{"port": 443, "protocol": "TCP"}]
    blocks = [peer["ipBlock"] for peer in rule["to"]]
    private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
    assert private <= set(blocks[0]["except"]) and blocks[0]["cidr"] == "0.0.0.0/0"
    assert "fe80::/10" in blocks[1]["except"]

    policy = with_oidc.one("NetworkPolicy", "tasks-service-oidc-egress")
    assert policy["metadata"]["namespace"] == "tasks"
    api_labels = deployment(with_oidc)["spec"]["template"]["metadata"]["labels"]
    migration_labels = job(with_oidc)["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]
    assert selects(selector, api_labels) and not selects(selector, migration_labels)
    assert kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    others = [item for item in with_oidc.objects if item is not policy]
    assert others == rendered["production"].objects  # the component adds, changes nothing


def test_secrets_are_referenced_never_committed(rendered: dict[str, Rendered]) -> None:
    for name in ("development", "production"):
        env = api_container(rendered[name])["env"]
        references = {
            item["name"]: item["valueFrom"]["secretKeyRef"]
            for item in env
            if "secretKeyRef" in item.get("valueFrom", {})
        }
        assert set(references) == SECRET_KEYS
        assert all(ref["key"] == key for key, ref in references.items())
        (secret_name,) = {ref["name"] for ref in references.values()}
        if name == "production":
            assert rendered[name].of_kind("Secret") == []  # created apart, by the operator
            assert secret_name == "tasks-service-secrets"
        else:
            generated = rendered[name].one("Secret", secret_name)  # from secrets.env
            assert set(generated["data"]) >= SECRET_KEYS
    tracked = subprocess.run(
        ["git", "ls-files", "deploy"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "git ls-files found nothing"
    assert "deploy/k8s/overlays/development/secrets.env" not in tracked
    for path in tracked:
        assert not re.search(r"^kind: Secret$", (ROOT / path).read_text(), re.MULTILINE), path
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/k8s/overlays/development/secrets.env"], cwd=ROOT
    )
    assert ignored.returncode == 0, "the development overlay's secrets.env must be git-ignored"


def test_the_settings_are_ones_the_service_reads_and_valid(overlay: Rendered) -> None:
    data = settings(overlay)
    fields = {name.upper() for name in Settings.model_fields}
    assert set(data) - fields - START_VARIABLES == set()
    values: dict[str, Any] = {key.lower(): value for key, value in data.items()}
    values = {key: value for key, value in values.items() if key in Settings.model_fields}
    Settings.model_validate(
        {**values, "jwt_secret": "x" * 48, "mfa_encryption_key": Fernet.generate_key().decode()}
    )
    if overlay.name == "production":
        assert data["APP_ENV"] == "production"
        assert data["REDIS_WAIT_REPLICAS"] == "1"  # Sentinel with a replica
    else:
        assert data["APP_ENV"] == "development"


def test_the_ingress_bounds_clients_as_the_compose_proxy_does(overlay: Rendered) -> None:
    nginx = nginx_directives()
    ingress = overlay.one("Ingress", "tasks-service")
    annotations = {
        key.removeprefix("nginx.ingress.kubernetes.io/"): value
        for key, value in ingress["metadata"]["annotations"].items()
    }
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert annotations["proxy-body-size"] == nginx["client_max_body_size"][0]
    assert annotations["proxy-request-buffering"] == nginx["proxy_request_buffering"][0]
    assert annotations["proxy-connect-timeout"] == seconds(nginx["proxy_connect_timeout"][0])
    assert annotations["proxy-read-timeout"] == seconds(nginx["proxy_read_timeout"][0])
    assert annotations["proxy-send-timeout"] == seconds(nginx["proxy_send_timeout"][0])
    assert annotations["proxy-next-upstream"] == nginx["proxy_next_upstream"][0]
    assert annotations["proxy-next-upstream-tries"] == nginx["proxy_next_upstream_tries"][0]
    assert not any("snippet" in key for key in annotations)  # disabled by the controller
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    service = overlay.one("Service", backend["name"])
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    if overlay.name == "production":
        (tls,) = ingress["spec"]["tls"]
        assert tls["hosts"] == [rule["host"]]
        assert settings(overlay)["ALLOWED_HOSTS"] == rule["host"]


def test_the_ingress_controller_settings_match_the_compose_proxy() -> None:
    nginx = nginx_directives()
    (config,) = yaml.safe_load_all(CONTROLLER_CONFIG.read_text())
    data = config["data"]
    assert data["client-header-buffer-size"] == nginx["client_header_buffer_size"][0]
    assert data["large-client-header-buffers"] == nginx["large_client_header_buffers"][0]
    assert data["client-header-timeout"] == seconds(nginx["client_header_timeout"][0])
    assert data["client-body-timeout"] == seconds(nginx["client_body_timeout"][0])
    assert data["keep-alive"] == seconds(nginx["keepalive_timeout"][0])
    assert data["keep-alive-requests"] == nginx["keepalive_requests"][0]
    # X-Forwarded-For overwritten, as deploy/nginx.conf does (TRUSTED_PROXIES relies on it).
    assert (data["use-forwarded-headers"], data["compute-full-forwarded-for"]) == ("false", "false")
    assert "X-Forwarded-For $remote_addr" in nginx["proxy_set_header"]


def test_network_policies_admit_the_ingress_controller_and_prometheus_only(
    overlay: Rendered,
) -> None:
    policies = overlay.of_kind("NetworkPolicy")
    # Every pod of the overlay is isolated both ways by some policy.
    for where, template in pod_templates(overlay):
        labels = template["metadata"]["labels"]
        covering = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        assert covering, where
        assert all(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in covering)
    api = overlay.one("NetworkPolicy", "tasks-service-api")
    (rule,) = api["spec"]["ingress"]
    sources = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: peer[
            "podSelector"
        ]["matchLabels"]
        for peer in rule["from"]
    }
    # Named pods, never a whole namespace: TRUSTED_PROXIES=* believes X-Forwarded-For from
    # whoever reaches the port, so any pod admitted could choose its rate-limit key.
    assert sources == {
        "ingress-nginx": {"app.kubernetes.io/name": "ingress-nginx"},
        "monitoring": {"app.kubernetes.io/name": "prometheus"},
    }
    assert [port["port"] for port in rule["ports"]] == ["http"]
    ports = {port["port"] for egress in api["spec"]["egress"] for port in egress["ports"]}
    # DNS, PostgreSQL, Redis (and Sentinel in production), SMTP: nothing else.
    assert {53, 5432, 6379} <= ports <= {53, 5432, 6379, 26379, 587, 465, 25}
    migrate = overlay.one("NetworkPolicy", "tasks-service-migrate")
    assert "ingress" not in migrate["spec"]
    assert {p["port"] for e in migrate["spec"]["egress"] for p in e["ports"]} == {53, 5432}


def test_every_checkov_skip_has_a_comment_beside_it() -> None:
    skips = 0
    for path in sorted(K8S.rglob("*.yaml")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if "checkov.io/skip" not in line:
                continue
            skips += 1
            reason = line.partition(": ")[2].partition("=")[2]
            assert len(reason.split()) >= 4, f"{path}:{number + 1}: say why in the annotation"
            above = number - 1
            while "checkov.io/skip" in lines[above]:
                above -= 1
            assert lines[above].strip().startswith("#"), f"{path}:{number + 1}: no comment above"
    assert skips > 0


def test_no_file_names_a_path_outside_deploy_k8s() -> None:
    # kustomize refuses files outside a kustomization's root by default; said once here.
    for path in K8S.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(path.read_text()).get("resources", []):
            assert (path.parent / resource).resolve().is_relative_to(K8S.resolve()), resource
