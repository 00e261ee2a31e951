"""deploy/prometheus and deploy/grafana: the alerting rules pass `promtool check rules` and
their unit tests on synthetic series (`promtool test rules`), the dashboard is importable,
and every metric an alert or a panel names is one the service exports, as read from a live
/metrics.

prometheus-client's multiprocess mode lists a metric family only once one of its series
has a value, so the live servers are driven through the events that create each one: a
request, a login, a failed and a rate-limited login, a logout, a wrong second-factor code,
a sign-in with a provider that does not answer, and (on a second server, whose Redis address
answers nothing) a failed readiness check, the dependency error."""

import json
import re
import subprocess
from typing import Any

import pytest
import requests
import yaml

from tests.deploy import tools
from tests.support.api import Api
from tests.support.live_server import ROOT, LiveServer, StartServer, free_port
from tests.support.second_factor import enrol

PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tasks-service.json"
METRICS_TOKEN = "metrics-token-for-the-deploy-tests"
# PromQL words that are not metric names: operators, and aggregations or functions when
# no parenthesis follows them directly.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
KEYWORDS |= {"group_left", "group_right", "inf", "nan"}


# ---------------------------------------------------------------- PromQL


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not functions, labels or keywords)."""
    if expr.startswith("label_values("):  # Grafana's: label_values(metric, label)
        expr = expr.removeprefix("label_values(").partition(",")[0]
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match[0].lower() not in KEYWORDS:
            names.add(match[0])
    return names


def test_metric_names_are_read_from_promql() -> None:
    quantile = (
        'histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{method="GET"}[5m]))) > 0.5'
    )
    assert metric_names(quantile) == {"a_seconds_bucket"}
    assert metric_names("max by (dependency) (circuit_state) == 2") == {"circuit_state"}
    ratio = 'sum(rate(x_total{s=~"5.."}[$__rate_interval])) / sum(rate(x_total[5m])) > 0.01'
    assert metric_names(ratio) == {"x_total"}
    either = 'sum(rate(y_total{o="a"}[5m])) > 2 * (sum(rate(z_total[5m])) or vector(0)) + 1'
    assert metric_names(either) == {"y_total", "z_total"}
    assert metric_names("label_values(circuit_state, job)") == {"circuit_state"}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def panel_names(panel: dict[str, Any]) -> set[str]:
    return {name for target in panel["targets"] for name in metric_names(target["expr"])}


# ---------------------------------------------------------------- promtool


def test_the_alerting_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [tools.promtool(), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_the_alerting_rules_pass_their_unit_tests() -> None:
    result = subprocess.run(
        [tools.promtool(), "test", "rules", str(ALERT_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = yaml.safe_load(ALERT_TESTS.read_text())
    assert cases["rule_files"] == [ALERTS.name]
    outcomes: dict[str, set[bool]] = {}
    for case in cases["tests"]:
        for check in case["alert_rule_test"]:
            outcomes.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    names = {rule["alert"] for rule in alert_rules()}
    assert outcomes == {name: {True, False} for name in names}


def test_every_alert_has_a_severity_and_a_summary() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert metric_names(rule["expr"]), rule["alert"]


def test_the_operations_guide_points_to_the_rules_file() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert "../deploy/prometheus/alerts.yml" in guide
    assert "alert: TasksServerErrors" not in guide  # the rules live in one place


# ---------------------------------------------------------------- the dashboard


def test_the_dashboard_is_importable() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]


def test_the_dashboard_shows_what_operators_ask_for() -> None:
    shown = {panel["title"]: panel_names(panel) for panel in panels()}
    wanted = {
        "request rate": "http_requests_total",
        "latency": "http_request_duration_seconds_bucket",
        "5xx": "http_requests_total",
        "rate-limit": "rate_limit_rejections_total",
        "revocations": "session_revocations_total",
        "login": "login_attempts_total",
        "dependency errors": "dependency_errors_total",
        "circuit": "dependency_circuit_state",
        "second-factor": "mfa_attempts_total",
        "provider": "oidc_logins_total",
    }
    for topic, metric in wanted.items():
        titles = [title for title in shown if topic.split()[0] in title.lower()]
        assert any(metric in shown[title] for title in titles), topic
    exprs = [target["expr"] for panel in panels() for target in panel["targets"]]
    for quantile in ("0.5", "0.9", "0.99"):
        assert any(expr.startswith(f"histogram_quantile({quantile},") for expr in exprs)
    assert any('status=~"4.."' in expr for expr in exprs)
    assert any('status=~"5.."' in expr for expr in exprs)


# ---------------------------------------------------------------- against a live /metrics


def scrape(server: LiveServer) -> str:
    response = requests.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture(scope="module")
def exported(start_server: StartServer) -> dict[str, set[str]]:
    """{family: its sample names}, as two live servers expose them."""
    # The provider's issuer is a port nothing listens on: its sign-ins fail, provider_error.
    served = start_server(
        METRICS_TOKEN=METRICS_TOKEN,
        LOGIN_RATE_LIMIT="4/minute",  # the login, the enrolment's password, two wrong ones
        OIDC_PROVIDERS="corp",
        OIDC_CORP_ISSUER=f"http://127.0.0.1:{free_port()}",
        OIDC_CORP_CLIENT_ID="tasks",
        OIDC_CORP_CLIENT_SECRET="a-client-secret-of-the-deploy-tests",
        OIDC_TIMEOUT_SECONDS="1",
        PUBLIC_BASE_URL="http://127.0.0.1",
        OIDC_RETURN_URL="http://127.0.0.1/signed-in",
    )
    api = Api(served.url)
    email = api.register()
    tokens = api.login(email)
    assert api.get("/tasks", headers=tokens.headers).status_code == 200
    app, _ = enrol(api, tokens)
    confirmed = api.post(
        "/me/mfa/totp/confirm", json={"code": app.wrong_code()}, headers=tokens.headers
    )
    assert confirmed.status_code == 400, confirmed.text
    started = requests.get(f"{served.url}/oidc/corp/authorize", allow_redirects=False, timeout=10)
    assert "error=provider_error" in started.headers["Location"], started.text
    assert api.post("/logout", headers=tokens.headers).status_code == 200
    wrong = {"email": email, "password": "a wrong password"}
    assert [api.post("/login", json=wrong).status_code for _ in range(3)] == [401, 401, 429]

    # Nothing listens on this port: the readiness check's ping fails, a dependency error.
    redis_gone = start_server(
        METRICS_TOKEN=METRICS_TOKEN, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    assert requests.get(f"{redis_gone.url}/health/ready", timeout=10).status_code == 503

    families: dict[str, set[str]] = {}
    for text in (scrape(served), scrape(redis_gone)):
        family = ""
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                family = line.split()[2]
                families.setdefault(family, set())
            elif line and not line.startswith("#"):
                sample = re.split(r"[{ ]", line, maxsplit=1)[0]
                assert family and sample.startswith(family), line  # after its TYPE line
                families[family].add(sample)
    return families


def test_the_service_exports_every_family_once_driven(exported: dict[str, set[str]]) -> None:
    # What the dashboard and the alerts rely on (the service may export more).
    expected = {
        "http_requests_total": {"http_requests_total"},
        "http_request_duration_seconds": {
            "http_request_duration_seconds_bucket",
            "http_request_duration_seconds_count",
            "http_request_duration_seconds_sum",
        },
        "session_revocations_total": {"session_revocations_total"},
        "rate_limit_rejections_total": {"rate_limit_rejections_total"},
        "login_attempts_total": {"login_attempts_total"},
        "mfa_attempts_total": {"mfa_attempts_total"},
        "oidc_logins_total": {"oidc_logins_total"},
        "dependency_errors_total": {"dependency_errors_total"},
        "dependency_circuit_state": {"dependency_circuit_state"},
    }
    assert {family: exported.get(family) for family in expected} == expected


def test_every_metric_an_alert_or_a_panel_names_is_exported(
    exported: dict[str, set[str]],
) -> None:
    samples = set().union(*exported.values())
    named = {f"alert {rule['alert']}": metric_names(rule["expr"]) for rule in alert_rules()}
    named |= {f"panel {panel['title']}": panel_names(panel) for panel in panels()}
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            named[f"variable {variable['name']}"] = metric_names(variable["query"]["query"])
    unknown = {where: names - samples for where, names in named.items() if names - samples}
    assert unknown == {}
    assert all(named.values())


def test_the_dashboard_file_is_formatted() -> None:
    # Two-space JSON with a final newline, as written: reviewable diffs.
    text = DASHBOARD.read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
