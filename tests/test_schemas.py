"""Every `--format json` document validates against its schema in confedit/schemas, on real runs
of the installed command (single files, several files, audits, the fleet, and errors)."""

from __future__ import annotations

import copy
import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from confedit import auditing, fleet, report
from tests.conftest import CORPUS, EXCHANGE, SAMPLES
from tests.helpers import git_env, make_fleet

SAMPLE = SAMPLES / "exchange2013-cas.applicationHost.config"
MALFORMED = EXCHANGE / "e2019-malformed.applicationHost.config"


def load_schemas() -> dict[str, dict[str, Any]]:
    folder = resources.files("confedit") / "schemas"
    return {
        entry.name: json.loads(entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".schema.json")
    }


SCHEMAS = load_schemas()
REGISTRY: Registry = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in SCHEMAS.values()
)
BY_ID = {schema["$id"]: schema for schema in SCHEMAS.values()}


def validate(document: dict[str, Any]) -> None:
    """Validate against the schema the document names in its own `$schema`."""
    schema = BY_ID[document["$schema"]]
    Draft202012Validator(schema, registry=REGISTRY).validate(document)


def run_json(exe: str, *args: str, cwd: Path, code: int) -> dict[str, Any]:
    proc = subprocess.run(
        [exe, *args, "--format", "json"], cwd=cwd, capture_output=True, check=False
    )
    assert proc.returncode == code, proc.stderr
    document: dict[str, Any] = json.loads(proc.stdout)
    validate(document)
    return document


def test_the_schemas_are_valid_and_name_the_ids_the_code_writes():
    assert sorted(SCHEMAS) == [
        "audit-batch.schema.json",
        "audit-report.schema.json",
        "fleet-report.schema.json",
        "offload-batch.schema.json",
        "offload-report.schema.json",
    ]
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)
    assert set(BY_ID) == {
        report.SCHEMA_ID,
        report.BATCH_SCHEMA_ID,
        auditing.SCHEMA_ID,
        report.AUDIT_BATCH_SCHEMA_ID,
        fleet.SCHEMA_ID,
    }


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("schemas")
    make_fleet(root, CORPUS, SAMPLES)
    return root


def test_single_file_offload_reports(confedit_exe, tmp_path):
    changed = run_json(confedit_exe, "offload", str(SAMPLE), cwd=tmp_path, code=0)
    assert changed["status"] == "changed" and len(changed["targets"]) == 7
    work = run_json(confedit_exe, "offload", "--check", str(SAMPLE), cwd=tmp_path, code=1)
    assert work["status"] == "work-found"
    patched = SAMPLES / "exchange2013-cas.applicationHost.patched.config"
    unchanged = run_json(confedit_exe, "offload", str(patched), cwd=tmp_path, code=0)
    assert unchanged["status"] == "unchanged" and unchanged["diff"] == ""
    refused = run_json(
        confedit_exe,
        "offload",
        str(SAMPLE),
        "--path",
        "Exchange Back End/owa",
        cwd=tmp_path,
        code=3,
    )
    assert refused["error"]["kind"] == "refused" and refused["error"]["reasons"]
    invalid = run_json(confedit_exe, "offload", str(MALFORMED), cwd=tmp_path, code=4)
    assert (invalid["error"]["line"], invalid["error"]["column"]) == (128, 22)
    missing = run_json(confedit_exe, "offload", "no-such.config", cwd=tmp_path, code=4)
    assert missing["status"] == "invalid"


def test_a_since_refusal_lists_its_changes_as_reasons_and_its_advice_apart(confedit_exe, tmp_path):
    config = tmp_path / "applicationHost.config"
    config.write_bytes(SAMPLE.read_bytes())
    env = git_env()
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "export"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, env=env)
    back_end = b'<location path="Exchange Back End">'
    config.write_bytes(config.read_bytes().replace(back_end, back_end[:-1] + b' a="b">'))
    args = ("offload", "--check", "--since", "HEAD", config.name)
    error = run_json(confedit_exe, *args, cwd=tmp_path, code=3)["error"]
    assert error["reasons"] == [
        "the Exchange Back End changed since HEAD: <location path='Exchange Back End'> was changed"
    ]
    assert error["advice"].endswith(
        f"`git -C {tmp_path} diff HEAD -- applicationHost.config` shows it"
    )
    assert (
        error["message"]
        == f"applicationHost.config: refused: {error['reasons'][0]}; {error['advice']}"
    )


def test_offload_report_of_several_files(confedit_exe, fleet_dir):
    document = run_json(confedit_exe, "offload", "fleet", cwd=fleet_dir, code=3)
    assert [f["status"] for f in document["files"]] == [
        "changed",
        "changed",
        "invalid",
        "unchanged",
        "refused",
        "refused",
    ]
    assert document["summary"] == {
        "files": 6,
        "changed": 2,
        "unchanged": 1,
        "refused": 2,
        "invalid": 1,
    }
    assert document["files"][1]["encoding"] != document["files"][0]["encoding"]  # BOM
    check = run_json(confedit_exe, "offload", "--check", "fleet/cas-2016", cwd=fleet_dir, code=1)
    assert check["files"][0]["status"] == "work-found"


def test_audit_reports(confedit_exe, fleet_dir):
    full = run_json(confedit_exe, "audit", str(SAMPLE), cwd=fleet_dir, code=0)
    assert full["rows"] and full["all_offloaded"] is False
    gate = run_json(confedit_exe, "audit", "--offloaded", str(SAMPLE), cwd=fleet_dir, code=1)
    assert "rows" not in gate
    error = run_json(confedit_exe, "audit", str(MALFORMED), cwd=fleet_dir, code=4)
    assert error["$schema"] == auditing.SCHEMA_ID and error["error"]["kind"] == "invalid"
    many = run_json(confedit_exe, "audit", "--offloaded", "fleet", cwd=fleet_dir, code=4)
    assert many["summary"] == {"files": 6, "offloaded": 1, "not_offloaded": 4, "invalid": 1}
    assert [f["file"] for f in many["files"]][2] == "fleet/cas-broken/applicationHost.config"


def test_fleet_report(confedit_exe, fleet_dir):
    document = run_json(confedit_exe, "audit", "--fleet", "fleet", cwd=fleet_dir, code=4)
    assert document["consistent"] is False
    assert document["disagreeing"] == ["owa", "ecp", "ews", "autodiscover", "eas", "oab", "mapi"]
    assert [s["compared"] for s in document["servers"]] == [True, True, True, True, False]
    assert document["servers"][3]["targets"]["owa"] == {
        "present": True,
        "effective_ssl_flags": "Ssl, Ssl128",
        "extended_protection": "Require",
        "offloaded": False,
        "unlocked_by": None,
        "below": [  # owa/Calendar: no SSL, as on the other servers, but Extended Protection
            {
                "path": "Calendar",
                "effective_ssl_flags": "None",
                "extended_protection": "Require",
                "unlocked_by": None,
            }
        ],
    }
    assert [e["file"] for e in document["errors"]] == ["fleet/cas-broken/applicationHost.config"]
    agree = run_json(
        confedit_exe, "audit", "--fleet", "fleet/cas-2016", "fleet/cas-2019", cwd=fleet_dir, code=0
    )
    assert agree["consistent"] is True and agree["errors"] == []


def test_the_schemas_reject_what_confedit_must_not_write(confedit_exe, tmp_path):
    good = run_json(confedit_exe, "offload", str(SAMPLE), cwd=tmp_path, code=0)
    broken = [copy.deepcopy(good) for _ in range(4)]
    del broken[0]["status"]
    broken[1]["exit_code"] = 3  # an error code without an error
    broken[2]["targets"][0]["action"] = "deleted"
    broken[3]["targets"][0]["after"]["sslFlags"] = "Ssl"
    for document in broken:
        with pytest.raises(ValidationError):
            validate(document)


@pytest.mark.parametrize(
    "args",
    [
        [str(SAMPLE), str(SAMPLE), "-o", "x.config"],  # -o with several files
        [str(SAMPLE), "--diff", str(SAMPLE)],  # an output over the input
    ],
)
def test_a_usage_error_is_a_json_report_too(confedit_exe, tmp_path, args):
    document = run_json(confedit_exe, "offload", *args, cwd=tmp_path, code=2)
    assert document["status"] == "usage" and document["error"]["kind"] == "usage"


def test_an_audit_without_the_front_end_says_why_in_json_too(confedit_exe, tmp_path):
    # what the text report says on its own line: a pipeline reading JSON needs it as much
    args = ("audit", str(SAMPLE), "--site", "Defualt Web Site")
    misspelt = run_json(confedit_exe, *args, cwd=tmp_path, code=0)
    assert misspelt["front_end_problem"] == (
        "the site 'Defualt Web Site' is not in <sites>; did you mean 'Default Web Site'?"
    )
    plain = CORPUS / "iis" / "reverse-proxy.applicationHost.config"
    other = run_json(confedit_exe, "audit", str(plain), "--offloaded", cwd=tmp_path, code=1)
    assert other["front_end_problem"] == (
        "no Exchange front-end virtual directories in 'Default Web Site' — is this a Client "
        "Access server?"
    )
    assert "front_end_problem" not in run_json(
        confedit_exe, "audit", str(SAMPLE), cwd=tmp_path, code=0
    )


def test_a_fleet_whose_site_is_in_no_file_says_why_in_json_too(confedit_exe, tmp_path):
    args = ("audit", "--fleet", str(SAMPLE), str(EXCHANGE / "e2016.applicationHost.config"))
    misspelt = run_json(confedit_exe, *args, "--site", "Defualt Web Site", cwd=tmp_path, code=1)
    assert misspelt["front_end_problem"] == (
        "the site 'Defualt Web Site' is not in <sites>; did you mean 'Default Web Site'?"
    )
    # compared (they disagree on owa: the sample has no owa/Calendar, which e2016 keeps off SSL)
    assert "front_end_problem" not in run_json(confedit_exe, *args, cwd=tmp_path, code=1)
