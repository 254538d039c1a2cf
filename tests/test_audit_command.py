"""`confedit audit`, run as a user runs it: the installed `confedit` in a subprocess, over one
file, then over several and with --fleet (see helpers.make_fleet)."""

from __future__ import annotations

import json
import subprocess

import pytest

from confedit.style import paint
from tests.conftest import CORPUS, PATCHED, SAMPLE, close_stdout, run, two_servers
from tests.helpers import NOT_INHERITED, SMALL_CAS, strip_ansi
from tests.test_schemas import validate

REVERSE_PROXY = "reverse-proxy.applicationHost.config"


@pytest.mark.parametrize("gate", [[], ["--offloaded"]])
@pytest.mark.parametrize("config", [SAMPLE, PATCHED], ids=["not-offloaded", "offloaded"])
def test_an_audit_report_carries_its_status_and_the_exit_code(confedit_exe, gate, config):
    proc = run(confedit_exe, "audit", "--format", "json", *gate, str(config))
    report = json.loads(proc.stdout)
    assert report["exit_code"] == proc.returncode == (1 if gate and config == SAMPLE else 0)
    assert report["status"] == ("offloaded" if config == PATCHED else "not-offloaded")


def test_audit_table_and_drift_gate(confedit_exe):
    proc = run(confedit_exe, "audit", str(SAMPLE))
    assert proc.returncode == 0
    text = proc.stdout.decode()
    assert "Default Web Site (front-end)" in text and "Exchange Back End (back-end)" in text
    assert max(len(line) for line in text.splitlines()) <= 120
    gate = run(confedit_exe, "audit", "--offloaded", str(SAMPLE))
    assert gate.returncode == 1 and b"NOT offloaded: run confedit offload" in gate.stdout
    assert run(confedit_exe, "audit", "--offloaded", str(PATCHED)).returncode == 0
    # A server without front-end directories: offload would refuse it, so it is not advised.
    plain = run(confedit_exe, "audit", "--offloaded", str(CORPUS / "iis" / REVERSE_PROXY))
    assert plain.returncode == 1
    assert b"no Exchange front-end virtual directories" in plain.stdout
    assert b"run confedit offload" not in plain.stdout
    report = json.loads(run(confedit_exe, "audit", "--format", "json", str(PATCHED)).stdout)
    assert report["all_offloaded"] is True
    assert {row["service"] for row in report["offloaded"]} == {
        "owa",
        "ecp",
        "ews",
        "autodiscover",
        "eas",
        "oab",
        "mapi",
    }


@pytest.mark.parametrize("args", [[], ["--offloaded"], ["--format", "json"]])
def test_the_back_end_as_the_front_end_site_is_refused_as_offload_refuses_it(confedit_exe, args):
    """`--site "Exchange Back End"` made the Back End the front end: the gate failed with
    'run confedit offload', which refuses that site, and passed on a Back End that had lost its
    SSL. The audit refuses it as offload does."""
    site = ["--site", "exchange back end"]
    proc = run(confedit_exe, "audit", *site, *args, str(SAMPLE))
    offload = run(confedit_exe, "offload", *site, str(SAMPLE))
    assert proc.returncode == offload.returncode == 3
    reason = "refused: the site 'exchange back end' is the Exchange Back End: "
    assert reason.encode() in offload.stderr
    if args == ["--format", "json"]:
        error = json.loads(proc.stdout)["error"]
        assert error["kind"] == "refused" and reason in error["message"]
    else:
        assert reason.encode() in proc.stderr and proc.stdout == b""


@pytest.mark.parametrize("args", [[], ["--offloaded"], ["--format", "json"]])
@pytest.mark.parametrize("restriction", ['allowLocation="false"', 'allowDefinition="AppHostOnly"'])
def test_a_registration_that_keeps_access_out_of_locations_is_refused_as_offload_refuses_it(
    confedit_exe, tmp_path, args, restriction
):
    """Offload refuses a file whose registration of the access section keeps it out of the
    <location> of a path; audit printed its table as if the file were fine, and its gate
    advised that offload."""
    registration = b'<section name="access" overrideModeDefault="Deny" />'
    restricted = registration.replace(b'"access"', b'"access" ' + restriction.encode())
    config = tmp_path / "applicationHost.config"
    config.write_bytes(SAMPLE.read_bytes().replace(registration, restricted))
    proc = run(confedit_exe, "audit", *args, config.name, cwd=tmp_path)
    offload = run(confedit_exe, "offload", config.name, cwd=tmp_path)
    assert proc.returncode == offload.returncode == 3
    (reason,) = offload.stderr.decode().splitlines()
    assert reason.startswith("applicationHost.config: refused: the access section is kept out")
    assert restriction in reason
    if args == ["--format", "json"]:
        report = json.loads(proc.stdout)
        validate(report)
        assert (report["status"], report["exit_code"]) == ("refused", 3)
        assert report["error"]["message"] == reason
    else:
        assert proc.stderr.decode().splitlines() == [reason]
        assert proc.stdout == b""


@pytest.mark.parametrize("args", [[], ["--offloaded"], ["--format", "json"]])
def test_audit_says_an_unlocked_access_section_on_stderr_as_every_warning(
    confedit_exe, tmp_path, args
):
    registration = b'<section name="access" overrideModeDefault="Deny" />'
    config = tmp_path / "applicationHost.config"
    config.write_bytes(
        PATCHED.read_bytes().replace(registration, registration.replace(b"Deny", b"Allow"))
    )
    proc = run(confedit_exe, "audit", *args, config.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert b"warning" not in proc.stdout
    assert proc.stderr.startswith(b"warning: the access section is unlocked for autodiscover,")
    assert len(proc.stderr.splitlines()) == 1
    quiet = run(confedit_exe, "audit", *args, "-q", config.name, cwd=tmp_path)
    assert (quiet.stdout, quiet.stderr) == (proc.stdout, b"")


def test_audit_says_on_stderr_what_unlocks_a_path_below_a_target(confedit_exe, tmp_path):
    integrated = b'<location path="Default Web Site/owa/Integrated"'
    config = tmp_path / "applicationHost.config"
    config.write_bytes(
        PATCHED.read_bytes().replace(integrated + b">", integrated + b' overrideMode="Allow">')
    )
    proc = run(confedit_exe, "audit", config.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (warning,) = proc.stderr.decode().splitlines()
    assert warning.startswith(
        'warning: the access section is unlocked below owa by overrideMode="Allow" at '
        "Default Web Site/owa/Integrated (line 196): "
    )


@pytest.mark.parametrize("gate", [[], ["--offloaded"]], ids=["all-rows", "offloaded"])
def test_the_json_report_names_what_unlocks_a_path_below_a_target(confedit_exe, tmp_path, gate):
    """--offloaded leaves out the rows, where each path's unlocked_by is: the gate's machine
    reader must still learn that a web.config below owa could put SSL back."""
    integrated = b'<location path="Default Web Site/owa/Integrated"'
    config = tmp_path / "applicationHost.config"
    config.write_bytes(
        PATCHED.read_bytes().replace(integrated + b">", integrated + b' overrideMode="Allow">')
    )
    proc = run(confedit_exe, "audit", *gate, "--format", "json", config.name, cwd=tmp_path)
    report = json.loads(proc.stdout)
    validate(report)
    assert report["unlocked_below"] == [
        {
            "path": "Default Web Site/owa/Integrated",
            "target": "owa",
            "unlocked_by": 'overrideMode="Allow" at Default Web Site/owa/Integrated (line 196)',
        }
    ]
    plain = run(confedit_exe, "audit", *gate, "--format", "json", str(PATCHED))
    assert json.loads(plain.stdout)["unlocked_below"] == []


# --- several files -----------------------------------------------------------------------------


def test_tables_are_coloured_when_asked(confedit_exe, tmp_path, fleet):
    args = ["audit", "--offloaded", str(fleet["cas-2016"]), str(fleet["cas-done"])]
    plain = run(confedit_exe, *args, cwd=tmp_path)
    coloured = run(confedit_exe, *args, "--color", "always", cwd=tmp_path)
    assert plain.returncode == coloured.returncode == 1
    assert b"\x1b[" not in plain.stdout
    assert strip_ansi(coloured.stdout) == plain.stdout
    assert b"\x1b[32myes" in coloured.stdout and b"\x1b[31m\x1b[1mNO" in coloured.stdout


def test_audit_of_several_files_prints_each_table_in_order(confedit_exe, tmp_path, fleet):
    proc = run(
        confedit_exe,
        "audit",
        "--offloaded",
        str(fleet["cas-done"]),
        str(fleet["cas-2016"]),
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    text = proc.stdout.decode()
    assert text.index("fleet/cas-done/") < text.index("fleet/cas-2016/")
    assert "all default targets are offloaded" in text and "NOT offloaded" in text
    assert proc.stderr.decode().strip() == "2 files: 1 offloaded, 1 not offloaded, 0 invalid"


def test_audit_over_the_fleet_reports_the_invalid_file_and_goes_on(confedit_exe, tmp_path, fleet):
    proc = run(confedit_exe, "audit", "fleet", cwd=tmp_path)
    assert proc.returncode == 4
    assert proc.stdout.count(b"(front-end)") == 5
    errors = proc.stderr.decode().splitlines()
    assert errors[0].startswith("fleet/cas-broken/applicationHost.config:128:22:")
    assert errors[-1] == "6 files: 1 offloaded, 4 not offloaded, 1 invalid"


@pytest.mark.parametrize("args", [[], ["--fleet"], ["--format", "json"]])
def test_audit_of_several_files_says_each_unlocked_access_section_on_stderr(
    confedit_exe, tmp_path, fleet, args
):
    registration = b'<section name="access" overrideModeDefault="Deny" />'
    unlocked = tmp_path / fleet["cas-done"]
    unlocked.write_bytes(
        unlocked.read_bytes().replace(registration, registration.replace(b"Deny", b"Allow"))
    )
    servers = [str(fleet["cas-2016"]), str(fleet["cas-done"])]
    proc = run(confedit_exe, "audit", *args, *servers, cwd=tmp_path)
    assert b"warning" not in proc.stdout
    (warning,) = [line for line in proc.stderr.decode().splitlines() if "warning" in line]
    assert warning.startswith(
        "fleet/cas-done/applicationHost.config: warning: the access section is unlocked for "
    )
    quiet = run(confedit_exe, "audit", *args, "-q", *servers, cwd=tmp_path)
    assert b"warning" not in quiet.stderr


def test_the_fleet_matrix_and_its_exit_codes(confedit_exe, tmp_path, fleet):
    same = run(
        confedit_exe,
        "audit",
        "--fleet",
        str(fleet["cas-2016"]),
        str(fleet["cas-2019"]),
        cwd=tmp_path,
    )
    assert same.returncode == 0, same.stderr
    assert same.stdout.decode().splitlines()[-1] == "both servers agree"
    gate = run(
        confedit_exe,
        "audit",
        "--fleet",
        "--offloaded",
        str(fleet["cas-2016"]),
        str(fleet["cas-2019"]),
        cwd=tmp_path,
    )
    assert gate.returncode == 1 and b"NOT offloaded everywhere" in gate.stdout

    differ = run(confedit_exe, "audit", "--fleet", "fleet/cas-2016", "fleet/cas-ep", cwd=tmp_path)
    assert differ.returncode == 1
    lines = differ.stdout.decode().splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["SERVER", "fleet/cas-2016", "fleet/cas-ep"]
    assert lines[3].split() == [
        "DIFFERS",
        "DIFFERS",
        "DIFFERS",
        "same",
        "DIFFERS",
        "DIFFERS",
        "DIFFERS",
    ]

    whole = run(confedit_exe, "audit", "--fleet", "fleet", cwd=tmp_path)
    assert whole.returncode == 4  # the malformed file; the others are still in the matrix
    rows = [line.split()[0] for line in whole.stdout.decode().splitlines()[1:6]]
    assert rows == [
        "fleet/cas-2016",
        "fleet/cas-2019",
        "fleet/cas-done",
        "fleet/cas-ep",
        "fleet/web",
    ]
    assert b"not compared (no Exchange front-end targets): fleet/web/" in whole.stdout
    assert whole.stderr.startswith(b"fleet/cas-broken/applicationHost.config:128:22:")


def test_a_fleet_differing_past_inherit_false_fails_the_gate(confedit_exe, tmp_path):
    # owa/Integrated, a child application with no <location>, requires SSL on cas1 alone: its
    # owa location does not pass None into child applications (inheritInChildApplications).
    for name, extra in (("cas1", NOT_INHERITED), ("cas2", b"")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "applicationHost.config").write_bytes(SMALL_CAS % extra)
    proc = run(confedit_exe, "audit", "--fleet", "--format", "json", "cas1", "cas2", cwd=tmp_path)
    report = json.loads(proc.stdout)
    assert proc.returncode == report["exit_code"] == 1
    assert report["disagreeing"] == ["owa"]
    (below,) = report["servers"][0]["targets"]["owa"]["below"]
    assert below["path"] == "Integrated" and below["effective_ssl_flags"] == "Ssl, Ssl128"


def test_the_fleet_agreement_is_not_green_above_not_offloaded_everywhere(
    confedit_exe, tmp_path, fleet
):
    # Two servers agree, neither offloaded, under --offloaded: a green "both servers agree"
    # stood above the red "NOT offloaded everywhere" of a failing run, and read as a pass.
    servers = (str(fleet["cas-2016"]), str(fleet["cas-2019"]))
    args = ("audit", "--fleet", "--offloaded", "--color", "always", *servers)
    proc = run(confedit_exe, *args, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.decode().splitlines()[-2:] == [
        paint("both servers agree", "dim"),
        paint("NOT offloaded everywhere: run confedit offload", "bad"),
    ]
    passing = run(confedit_exe, "audit", "--fleet", "--color", "always", *servers, cwd=tmp_path)
    assert passing.returncode == 0
    assert passing.stdout.decode().splitlines()[-1] == paint("both servers agree", "good")


def test_a_fleet_with_a_file_not_audited_says_so_below_the_matrix(confedit_exe, tmp_path, fleet):
    # A missing file beside two servers that agree: the run exits 4, its error on stderr, and
    # stdout ended with a green "both servers agree", which read as a pass where stderr is
    # kept apart (a CI log of stdout, say).
    servers = (str(fleet["cas-2016"]), "missing.config", str(fleet["cas-2019"]))
    proc = run(confedit_exe, "audit", "--fleet", "--color", "always", *servers, cwd=tmp_path)
    assert proc.returncode == 4
    assert strip_ansi(proc.stderr).decode().startswith("missing.config: no such file")
    assert proc.stdout.decode().splitlines()[-2:] == [
        paint("not audited (their errors are on stderr): missing.config", "bad"),
        paint("both servers agree", "dim"),
    ]


@pytest.mark.parametrize("args", [[], ["--format", "json"]])
def test_a_fleet_whose_back_end_lost_its_ssl_on_one_server_fails(
    confedit_exe, tmp_path, fleet, args
):
    # One server's Back End offloaded by hand: the front ends agree, and the fleet said
    # "all 2 servers agree" (exit 0), the Back End being in no column. It fails now, and its
    # agreement line says what agrees, the front end, so as not to read as a pass.
    config = tmp_path / fleet["cas-2019"]
    tag = b'<location path="Exchange Back End">'
    raw = config.read_bytes()
    at = raw.index(b'sslFlags="Ssl, Ssl128"', raw.index(tag))
    config.write_bytes(raw[:at] + b'sslFlags="None"' + raw[at + len(b'sslFlags="Ssl, Ssl128"') :])
    servers = ("fleet/cas-2016", "fleet/cas-2019")
    proc = run(confedit_exe, "audit", "--fleet", *args, *servers, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    if args:
        report = json.loads(proc.stdout)
        assert report["exit_code"] == 1 and report["consistent"] is True
        assert report["back_end_requires_ssl"] is False
        assert [s["back_end_without_ssl"] for s in report["servers"]] == [
            [],
            ["Exchange Back End"],
        ]
    else:
        lines = proc.stdout.decode().splitlines()
        assert lines[-2:] == [
            "both servers agree on the front end",
            "the Exchange Back End does not require SSL on fleet/cas-2019 (at /): the front end "
            "proxies to it over SSL, and it must keep requiring it; set sslFlags back to what "
            'Exchange Setup writes: "Ssl, Ssl128" at /',
        ]


def test_a_fleet_where_nothing_is_compared_fails_and_a_misspelt_site_is_named(
    confedit_exe, tmp_path, fleet
):
    # A consistency gate that compared no server vouches for nothing: it passed (exit 0) with a
    # misspelt --site, every server then seeming to have no front end.
    servers = ("fleet/cas-2016", "fleet/cas-2019")
    misspelt = run(
        confedit_exe, "audit", "--fleet", "--site", "Defualt Web Site", *servers, cwd=tmp_path
    )
    assert misspelt.returncode == 1
    assert misspelt.stdout.decode().splitlines()[-1] == (
        "no Client Access server among the files: the site 'Defualt Web Site' is not in <sites>; "
        "did you mean 'Default Web Site'?"
    )
    as_json = run(
        confedit_exe, "audit", "--fleet", "--site", "X", *servers, "--format", "json", cwd=tmp_path
    )
    assert json.loads(as_json.stdout)["exit_code"] == as_json.returncode == 1
    plain = run(confedit_exe, "audit", "--fleet", "fleet/web", cwd=tmp_path)
    assert plain.returncode == 1
    assert plain.stdout.decode().splitlines()[-1] == (
        "no Client Access server among the files: no Exchange front-end virtual directory in "
        "'Default Web Site' in any file"
    )
    plain_json = run(
        confedit_exe, "audit", "--fleet", "fleet/web", "--format", "json", cwd=tmp_path
    )
    assert json.loads(plain_json.stdout)["front_end_problem"] == (
        "no Exchange front-end virtual directory in 'Default Web Site' in any file"
    )
    broken = ("audit", "--fleet", "--format", "json", "fleet/cas-broken")
    invalid = run(confedit_exe, *broken, cwd=tmp_path)
    assert invalid.returncode == 4
    problem = json.loads(invalid.stdout)["front_end_problem"]
    assert problem == "no file could be audited: see each file's error"


def test_offloading_the_fleet_makes_it_agree(confedit_exe, tmp_path, fleet):
    servers = [str(fleet[s]) for s in ("cas-2016", "cas-2019", "cas-done")]
    assert run(confedit_exe, "audit", "--fleet", *servers, cwd=tmp_path).returncode == 1
    # The paths below the targets too: cas-done keeps owa/Integrated on SSL, and the others
    # owa/oma as well, which the sample has not.
    offload = ("offload", "--in-place", "--include-descendants", "-q", *servers)
    assert run(confedit_exe, *offload, cwd=tmp_path).returncode == 0
    proc = run(confedit_exe, "audit", "--fleet", "--offloaded", *servers, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.decode().splitlines()[1].split()[1:] == ["None"] * 7


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "cas01/applicationHost.config", "--format", "json"],
        ["audit", ".", "--format", "json"],
        ["audit", "--fleet", "."],
        ["audit", "--fleet", ".", "--format", "json"],
        ["offload", "."],  # the preview, for comparison
    ],
)
def test_an_audit_without_its_stdout_ends_as_an_offload_does(confedit_exe, tmp_path, args):
    """Closed from the start (`>&-`): exit 3 before anything is read; a reader that goes away
    (`| head`, `| true`): 141, quietly."""
    two_servers(tmp_path)
    closed = subprocess.run(
        [confedit_exe, *args],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        preexec_fn=close_stdout,
        check=False,
    )
    assert (closed.returncode, closed.stderr) == (3, b"cannot write to stdout: it is closed\n")
    gone = subprocess.Popen(
        [confedit_exe, *args, "-q"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert gone.stdout is not None and gone.stderr is not None
    gone.stdout.close()  # before confedit writes anything, as `| true` does
    assert gone.wait(timeout=60) == 141
    assert gone.stderr.read() == b""


def back_end_offloaded_by_hand(path) -> None:
    """The patched sample at `path`, with the Exchange Back End's own location set to None."""
    raw = PATCHED.read_bytes()
    at = raw.index(b'sslFlags="Ssl, Ssl128"', raw.index(b'<location path="Exchange Back End">'))
    path.write_bytes(raw[:at] + b'sslFlags="None"' + raw[at + len(b'sslFlags="Ssl, Ssl128"') :])


@pytest.mark.parametrize("args", [[], ["--format", "json"]])
def test_the_offloaded_gate_fails_a_back_end_that_lost_its_ssl(confedit_exe, tmp_path, args):
    # Every default target offloaded, and the Back End offloaded by hand: the gate said "all
    # default targets are offloaded" (exit 0), as --fleet did before it checked the Back End.
    config = tmp_path / "applicationHost.config"
    back_end_offloaded_by_hand(config)
    proc = run(confedit_exe, "audit", "--offloaded", *args, str(config))
    assert proc.returncode == 1, proc.stderr
    if args:
        report = json.loads(proc.stdout)
        assert report["exit_code"] == 1 and report["all_offloaded"] is True
        assert report["back_end_without_ssl"] == ["Exchange Back End"]
        validate(report)
    else:
        assert proc.stdout.decode().splitlines()[-1] == (
            "the Exchange Back End does not require SSL (at /): the front end proxies to it over "
            "SSL, and it must keep requiring it; set sslFlags back to what "
            'Exchange Setup writes: "Ssl, Ssl128" at /'
        )
    # Without --offloaded, audit reports and passes, as it does for targets not offloaded.
    assert run(confedit_exe, "audit", str(config)).returncode == 0


def test_the_back_end_advice_names_the_value_exchange_setup_writes_at_each_path(
    confedit_exe, tmp_path
):
    # "set its sslFlags back" left the operator to find the value, and it differs by path:
    # Setup writes "Ssl" on mapi/emsmdb and SslNegotiateCert too on PowerShell.
    config = tmp_path / "applicationHost.config"
    source = CORPUS / "exchange" / "e2019.applicationHost.config"
    proc = run(confedit_exe, "offload", str(source), "-o", str(config))
    assert proc.returncode == 0, proc.stderr
    raw = config.read_bytes()
    for path, flags in (
        (b"mapi/emsmdb", b"Ssl"),
        (b"PowerShell", b"Ssl, SslNegotiateCert, Ssl128"),
    ):
        at = raw.index(b'<location path="Exchange Back End/' + path + b'"')
        old = b'sslFlags="' + flags + b'"'
        at = raw.index(old, at)
        raw = raw[:at] + b'sslFlags="None"' + raw[at + len(old) :]
    config.write_bytes(raw)
    proc = run(confedit_exe, "audit", "--offloaded", str(config))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.decode().splitlines()[-1] == (
        "the Exchange Back End does not require SSL (at /mapi/emsmdb, /PowerShell): the front "
        "end proxies to it over SSL, and it must keep requiring it; set sslFlags back to what "
        'Exchange Setup writes: "Ssl" at /mapi/emsmdb, "Ssl, SslNegotiateCert, Ssl128" at '
        "/PowerShell"
    )


def test_the_offloaded_gate_passes_the_back_end_paths_exchange_leaves_without_ssl(confedit_exe):
    # owa/Calendar, Rpc and RpcWithCert of the Back End are on None in every real export.
    report = json.loads(run(confedit_exe, "audit", "--format", "json", str(PATCHED)).stdout)
    assert report["back_end_without_ssl"] == []
    assert run(confedit_exe, "audit", "--offloaded", str(PATCHED)).returncode == 0
