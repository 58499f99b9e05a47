"""Local AWS server for dowguard's integration tests.

Runs moto's server in-process on 127.0.0.1 with a port chosen by the OS, applies
the small patches listed in docs/testing.md, prints one line

    READY http://127.0.0.1:PORT

on stdout once the server answers, and exits as soon as its standard input
reaches EOF (the test process that started it is gone) or on SIGTERM/SIGINT.

Usage: python tests/harness/local_aws.py   (keep stdin open, e.g. from a pipe)
"""

import base64
import gzip
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import traceback
import warnings
import urllib.request
from datetime import datetime, timezone
from urllib.parse import unquote

import botocore.session
import cbor2
from moto.apigateway.exceptions import NotFoundException
from moto.apigateway.models import APIGatewayBackend, UsagePlan
from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.awslambda.models import EventInvokeConfig, LambdaBackend
from moto.cloudwatch.models import CloudWatchBackend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

HOST = "127.0.0.1"
HEALTH_PATH = "/moto-api/config"
HEALTH_TIMEOUT_SECONDS = 10


# --- Patch a: CloudWatch over Smithy rpcv2Cbor --------------------------------
#
# aws-sdk-cloudwatch >= 1.100 sends
#   POST /service/GraniteServiceVersion20100801/operation/<Operation>
#   smithy-protocol: rpc-v2-cbor, body in CBOR
# and moto 5.2.5 only routes CloudWatch's awsQuery and awsJson1_0 forms (it
# answers 404 to the path above). This WSGI middleware rewrites such a request
# into awsJson1_0, which moto's CloudWatch handles, and turns moto's JSON reply
# back into CBOR, shaped by botocore's CloudWatch model so that timestamps
# become CBOR tag 1, doubles are floats, integers are ints and blobs are bytes.

CBOR_PATH = re.compile(r"^/service/(?P<target>[^/]+)/operation/(?P<operation>[^/]+)$")
CBOR_CONTENT_TYPE = "application/cbor"
EPOCH_TAG = 1


def cbor_request_to_json(value):
    """A decoded CBOR request value as JSON for awsJson1_0."""
    if isinstance(value, dict):
        return {key: cbor_request_to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [cbor_request_to_json(item) for item in value]
    if isinstance(value, datetime):  # cbor2 decodes tag 1 to an aware datetime
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def epoch_seconds(value):
    """A JSON timestamp (epoch number or ISO 8601 string) as epoch seconds."""
    if isinstance(value, (int, float)):
        return value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def json_reply_to_cbor(value, shape):
    """A JSON reply value as the CBOR value that `shape` calls for."""
    if value is None or shape is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        return {
            key: json_reply_to_cbor(item, shape.members.get(key))
            for key, item in value.items()
            if item is not None
        }
    if kind == "list":
        return [json_reply_to_cbor(item, shape.member) for item in value]
    if kind == "map":
        return {
            key: json_reply_to_cbor(item, shape.value)
            for key, item in value.items()
            if item is not None
        }
    if kind == "timestamp":
        return cbor2.CBORTag(EPOCH_TAG, epoch_seconds(value))
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


class RpcV2CborBridge:
    """WSGI middleware: rpcv2Cbor in front of moto's awsJson1_0 handlers."""

    def __init__(self, app, service_names):
        self.app = app
        session = botocore.session.get_session()
        # target prefix (e.g. GraniteServiceVersion20100801) -> botocore model
        self.models = {}
        for name in service_names:
            model = session.get_service_model(name)
            self.models[model.metadata["targetPrefix"]] = model

    def __call__(self, environ, start_response):
        match = CBOR_PATH.match(environ.get("PATH_INFO", ""))
        if (
            match is None
            or match["target"] not in self.models
            or environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor"
        ):
            return self.app(environ, start_response)
        model = self.models[match["target"]]
        operation = model.operation_model(match["operation"])

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        # The SDKs gzip request bodies of 10,240 bytes or more for operations that
        # accept it, CloudWatch's PutMetricData among them ("Request compression",
        # AWS SDKs and Tools Reference Guide), and say so in Content-Encoding.
        if environ.get("HTTP_CONTENT_ENCODING", "").strip().lower() == "gzip":
            raw = gzip.decompress(raw)
        params = cbor2.loads(raw) if raw else {}
        json_body = json.dumps(cbor_request_to_json(params)).encode("utf-8")
        environ = dict(environ)
        environ.pop("HTTP_CONTENT_ENCODING", None)
        environ.update(
            {
                "PATH_INFO": "/",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "CONTENT_LENGTH": str(len(json_body)),
                "HTTP_X_AMZ_TARGET": f"{match['target']}.{operation.name}",
                "wsgi.input": io.BytesIO(json_body),
            }
        )

        reply = {}

        def capture(status, headers, exc_info=None):
            reply["status"], reply["headers"] = status, headers
            return lambda _data: None

        try:
            chunks = self.app(environ, capture)
            try:
                body = b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        except Exception as error:  # e.g. moto's NotImplementedError
            # Answer in CBOR, so the SDK reports a service error, not a parse failure.
            traceback.print_exc()
            reply = {"status": "500 INTERNAL SERVER ERROR", "headers": []}
            body = json.dumps({"__type": "InternalFailure", "message": f"moto: {error}"}).encode()

        status = reply["status"]
        if status.startswith("2"):
            decoded = json.loads(body) if body.strip() else {}
            cbor_body = cbor2.dumps(json_reply_to_cbor(decoded, operation.output_shape))
        else:
            try:
                error = json.loads(body)
            except ValueError:
                error = {"__type": "InternalFailure", "message": body.decode("utf-8", "replace")}
            # Error bodies carry `__type` and `message`; the SDK also reads the
            # `x-amzn-query-error` header (CloudWatch is awsQuery-compatible),
            # which passes through below.
            cbor_body = cbor2.dumps(error)
        headers = [
            (name, value)
            for name, value in reply["headers"]
            if name.lower() not in ("content-type", "content-length")
        ]
        headers += [
            ("Content-Type", CBOR_CONTENT_TYPE),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(cbor_body))),
        ]
        start_response(status, headers)
        return [cbor_body]


# --- Patches b and c: UpdateUsagePlan numbers ---------------------------------
#
# moto stores `/quota/limit` (and `/quota/offset`) exactly as given in the
# patch operation, a string, and the SDK then fails to parse every later
# GetUsagePlan(s). It also converts `/throttle/rateLimit` with int(), which
# fails (HTTP 500) on a fractional rate such as "2.5"; rateLimit is a double.

_update_usage_plan = UsagePlan.apply_patch_operations


def _apply_usage_plan_patch_operations(self, patch_operations):
    remaining = []
    for operation in patch_operations:
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace") and path == "/throttle/rateLimit":
            self.throttle["rateLimit"] = float(operation["value"])
        else:
            remaining.append(operation)
    _update_usage_plan(self, remaining)
    for key in ("limit", "offset"):
        if key in self.quota:
            self.quota[key] = int(self.quota[key])


UsagePlan.apply_patch_operations = _apply_usage_plan_patch_operations


# --- Patch h: DeleteUsagePlanKey of a key the plan does not hold -------------
#
# AWS answers NotFoundException (HTTP 404) when the usage plan key does not
# exist ("DeleteUsagePlanKey", Amazon API Gateway API Reference: Errors); moto
# pops it from a dict and answers 500 to a KeyError.


def _delete_usage_plan_key(self, usage_plan_id, key_id):
    if key_id not in self.usage_plan_keys.get(usage_plan_id, {}):
        raise NotFoundException("Invalid Usage Plan Key")
    self.usage_plan_keys[usage_plan_id].pop(key_id)


APIGatewayBackend.delete_usage_plan_key = _delete_usage_plan_key


# --- Patch d: apigatewayv2 UpdateStage ----------------------------------------
#
# moto answers 500 NotImplemented to PATCH /v2/apis/{apiId}/stages/{stageName}.
# This applies the fields the guard changes (default and per-route throttles)
# plus description and stage variables, and returns the stage as GetStage does.


def _update_stage(self):
    api_id = self.path.split("/")[-3]
    stage_name = unquote(self.path.split("/")[-1])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
    changes = json.loads(self.body or "{}")
    stage.default_route_settings.update(changes.get("defaultRouteSettings") or {})
    for route_key, settings in (changes.get("routeSettings") or {}).items():
        stage.route_settings.setdefault(route_key, {}).update(settings)
    stage.stage_variables.update(changes.get("stageVariables") or {})
    if "description" in changes:
        stage.description = changes["description"]
    stage.updated = datetime.now()
    return 200, {}, json.dumps(stage.to_json())


ApiGatewayV2Response.update_stage = _update_stage


# --- Patch e: Lambda function event invoke config -----------------------------
#
# moto appends every PutFunctionEventInvokeConfig to a list and GetFunction-
# EventInvokeConfig returns the first entry, so a second Put is never seen.
# AWS keeps one config per function, and Put replaces it whole: settings left
# out (a retry count, a destination) are removed.


def _put_function_event_invoke_config(self, function_name, config):
    function = self.get_function(function_name)
    function.event_invoke_config = [
        EventInvokeConfig(function.function_arn, function.last_modified, config)
    ]
    return function.event_invoke_config[0].response()


LambdaBackend.put_function_event_invoke_config = _put_function_event_invoke_config


# --- Patch g: GetMetricData matches a metric's dimensions exactly ----------------
# In CloudWatch a metric is its namespace, name and whole set of dimensions: a
# query without dimensions reads only the metric published without any, such as
# Lambda's "Across All Functions" series, not every function's. moto ignores the
# dimensions when the query gives none (and the namespace when it gives some), so
# the account's aggregate would count every function twice. Each MetricStat query
# here sees only the datapoints of its exact metric; other queries are unchanged.

_get_metric_data = CloudWatchBackend.get_metric_data


def _metric_key(namespace, name, dimensions):
    return namespace, name, tuple(sorted(dimensions))


def _get_metric_data_exact(self, queries, start_time, end_time, scan_by="TimestampAscending"):
    stats = [q for q in queries if "MetricStat" in q]
    others = [q for q in queries if "MetricStat" not in q]
    if not stats:
        return _get_metric_data(self, queries, start_time, end_time, scan_by)
    by_metric = {}
    for md in self.get_all_metrics():
        key = _metric_key(md.namespace, md.name, ((d.name, d.value) for d in md.dimensions))
        by_metric.setdefault(key, []).append(md)
    results = []
    try:
        for query in stats:
            metric = query["MetricStat"]["Metric"]
            key = _metric_key(
                metric["Namespace"],
                metric["MetricName"],
                ((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])),
            )
            self.get_all_metrics = lambda key=key: by_metric.get(key, [])
            results += _get_metric_data(self, [query], start_time, end_time, scan_by)
    finally:
        del self.get_all_metrics
    if others:
        results += _get_metric_data(self, others, start_time, end_time, scan_by)
    return results


CloudWatchBackend.get_metric_data = _get_metric_data_exact


# --- Patch f: Lambda GetAccountSettings ---------------------------------------
# moto has no route for GET /2016-08-19/account-settings (404 HTML). The guard
# needs the account's concurrency limit and what is left unreserved before it
# reserves any. Answer like AWS: the limit (MOTO_LAMBDA_CONCURRENCY_QUOTA, else
# 1000, AWS's default) and that limit minus every function's reservation.

ACCOUNT_SETTINGS_PATH = re.compile(r"^/2016-08-19/account-settings/?$")


class LambdaAccountSettings:
    """WSGI middleware answering GetAccountSettings from moto's own functions."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "GET" or not ACCOUNT_SETTINGS_PATH.match(
            environ.get("PATH_INFO", "")
        ):
            return self.app(environ, start_response)
        from moto.awslambda.models import lambda_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        limit = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", "1000"))
        reserved = 0
        count = 0
        for backend in lambda_backends[DEFAULT_ACCOUNT_ID].values():
            for function in backend.list_functions():
                count += 1
                reserved += int(function.reserved_concurrency or 0)
        body = json.dumps(
            {
                "AccountLimit": {
                    "TotalCodeSize": 80530636800,
                    "CodeSizeUnzipped": 262144000,
                    "CodeSizeZipped": 52428800,
                    "ConcurrentExecutions": limit,
                    "UnreservedConcurrentExecutions": limit - reserved,
                },
                "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": count},
            }
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


# --- Patch i: AssumeRole needs the role, and its external id -------------------
# moto 5.2.5 hands out credentials for any role ARN, even one that does not
# exist, and ignores `ExternalId`. AWS refuses both with `AccessDenied` ("AssumeRole",
# AWS STS API Reference; "Access to AWS accounts owned by third parties", IAM User
# Guide: a trust policy's `sts:ExternalId` condition must match the id given).
# The CLI's fan-out reports an account without the role as one line: the
# harness refuses a missing role, and a `StringEquals` `sts:ExternalId` that does
# not match, the way AWS does. Trust principals are not otherwise checked.

from moto.iam.models import iam_backends as _iam_backends
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend

_moto_assume_role = STSBackend.assume_role


def _external_ids(trust_policy):
    """The `sts:ExternalId` values a role's trust policy requires, if any."""
    try:
        document = json.loads(unquote(trust_policy or "{}"))
    except ValueError:
        return None
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    required = None
    for statement in statements:
        wanted = statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
        if wanted is not None:
            required = (required or set()) | set([wanted] if isinstance(wanted, str) else wanted)
    return required


def _assume_role(self, region_name, role_session_name, role_arn, policy, duration, external_id):
    match = re.match(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:.*/)?([^/]+)$", role_arn or "")
    role = None
    if match:
        roles = _iam_backends[match.group(1)]["global"].roles.values()
        role = next((r for r in roles if r.name == match.group(2)), None)
    refused = role is None
    if role is not None:
        wanted = _external_ids(role.assume_role_policy_document)
        refused = wanted is not None and external_id not in wanted
    if refused:
        raise STSClientError(
            "AccessDenied",
            f"User: arn:aws:iam::{self.account_id}:user/caller is not authorized to "
            f"perform: sts:AssumeRole on resource: {role_arn}",
        )
    return _moto_assume_role(
        self, region_name, role_session_name, role_arn, policy, duration, external_id
    )


STSBackend.assume_role = _assume_role
# moto's STS model has no AccessDenied shape; the reply is right, the warning noise.
warnings.filterwarnings("ignore", message=r"Exception\(STSClientError\) with code AccessDenied")


# --- Server life cycle ---------------------------------------------------------


def wait_until_healthy(endpoint):
    """Returns once the server answers moto's config endpoint."""
    # Straight to loopback, whatever proxy the environment names.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(endpoint + HEALTH_PATH, timeout=HEALTH_TIMEOUT_SECONDS) as answer:
        if not 200 <= answer.status < 300:
            raise RuntimeError(f"health check answered HTTP {answer.status}")


def main():
    # One line per request on stderr is noise in test output; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    app = LambdaAccountSettings(
        RpcV2CborBridge(DomainDispatcherApplication(create_backend_app), ["cloudwatch"])
    )
    server = make_server(HOST, 0, app, threaded=True, request_handler=MotoRequestHandler)
    endpoint = f"http://{HOST}:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    wait_until_healthy(endpoint)

    print(f"READY {endpoint}", flush=True)
    # Anything moto prints from now on goes to stderr: nobody reads stdout any
    # more, and a full pipe would block the server.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def stop_at_eof():
        # os.read, not sys.stdin: a daemon thread blocked inside a buffered
        # reader makes the interpreter abort at exit.
        while os.read(sys.stdin.fileno(), 4096):
            pass
        stop.set()

    threading.Thread(target=stop_at_eof, daemon=True).start()
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
