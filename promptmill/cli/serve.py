"""``promptmill serve``, ``traces`` and ``inject``: serving a prompt and probing it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from .common import State, clip, console, err_console, fail, is_loopback

DEFAULT_KEY_ENV = "PROMPTMILL_API_KEY"


def serve(
    prompt: str = typer.Option(..., "--prompt", "-p", help="NAME, NAME@VERSION or NAME@TAG "
                               "from the store."),
    config: Path = typer.Option(None, "--config", "-c", help="Task config: model, generation "
                                "settings, demo pool and context section."),
    model: str = typer.Option(None, "--model", "-m", help="Model spec (default: the config's, "
                              "else 'embedded')."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    api_key_env: str = typer.Option(DEFAULT_KEY_ENV, "--api-key-env", metavar="VAR",
                                    help="Environment variable holding the API key clients "
                                         "must send as 'Authorization: Bearer KEY'."),
    max_body_bytes: int = typer.Option(1_000_000, "--max-body-bytes", min=256,
                                       help="Larger request bodies get 413."),
    max_concurrency: int = typer.Option(8, "--max-concurrency", min=1,
                                        help="Requests at the backend at once; more wait."),
    backend_timeout: float = typer.Option(120.0, "--backend-timeout", min=0.1,
                                          help="Seconds before a backend call becomes a 502."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request line "
                                    "(key-named query parameters show as ***)."),
    allowed_host: list[str] = typer.Option(None, "--allowed-host", metavar="NAME[:PORT]",
                                           help="Another Host name to answer (a proxy's); "
                                                "loopback names and --host always are."),
    allow_origin: list[str] = typer.Option(None, "--allow-origin", metavar="ORIGIN",
                                           help="A web page origin (https://app.example) "
                                                "whose requests are answered; pages of other "
                                                "origins get 403."),
) -> None:
    """Serve a prompt version behind OpenAI-compatible /v1/chat/completions and /v1/completions."""
    from ..errors import require

    uvicorn = require("uvicorn", "serve", "promptmill serve")
    from ..redact import register_secret
    from ..serve import create_app, load_served_prompt
    from ..serve.limits import uvicorn_log_config

    api_key = _server_key(api_key_env, host)
    _check_hosts(host, port, allowed_host or [])
    register_secret(api_key)  # no backend output may carry the key clients present
    store = State.store()
    with console.status(f"loading {prompt} and its model…"):
        served = load_served_prompt(store, prompt, config=config, model=model)
    if api_key is None:
        err_console.print(f"[yellow]warning:[/] ${api_key_env} is not set: serving without an "
                          "API key on loopback", highlight=False)
    backend_key = os.environ.get(getattr(served.model, "api_key_env", "") or "")
    app = create_app(served, store, api_key=api_key, max_body_bytes=max_body_bytes,
                     max_concurrency=max_concurrency, backend_timeout=backend_timeout,
                     secrets=[backend_key], host=host, port=port,
                     allowed_hosts=allowed_host or [], allowed_origins=allow_origin or [])
    auth = f"key from ${api_key_env}" if api_key else "no auth (loopback only)"
    console.print(f"serving [bold]{served.ref}[/] (hash {served.prompt.hash}) with "
                  f"{getattr(served.model, 'spec', served.model.identity)} at "
                  f"http://{host}:{port}/v1  ·  {auth}  ·  max {max_concurrency} at once",
                  highlight=False)
    try:
        uvicorn.run(app, host=host, port=port, access_log=access_log,
                    log_level="info" if access_log else "warning",
                    log_config=uvicorn_log_config([api_key, backend_key]))
    finally:
        served.model.close()


def _check_hosts(host: str, port: int, allowed: list[str]) -> None:
    from ..serve.guard import guard_settings

    try:
        guard_settings(host, port, allowed)
    except ValueError as exc:
        fail(f"--allowed-host: {exc}. Fix: give a host name such as api.internal or "
             "api.internal:8443")


def _server_key(env: str, host: str) -> str | None:
    key = os.environ.get(env) or None
    if key is None and not is_loopback(host):
        fail(f"--host {host} is reachable from other machines and ${env} is not set; set "
             f"{env} to an API key (clients send it as 'Authorization: Bearer KEY'), or serve "
             "on 127.0.0.1")
    return key




def traces(
    prompt: str = typer.Option(None, "--prompt", "-p", help="Only this prompt name's traces."),
    limit: int = typer.Option(20, "--limit", min=1, help="Rows to show."),
    dataset: Path = typer.Option(None, "--dataset", help="Write successful traces as a JSONL "
                                 "dataset instead of showing them."),
) -> None:
    """Show production traces of served prompts, or turn them into a dataset."""
    from rich.table import Table

    from ..serve.traces import list_traces, traces_to_dataset

    store = State.store()
    if dataset is not None:
        count = traces_to_dataset(store, dataset, prompt)
        console.print(f"wrote {count} trace(s) to {dataset}; read it in a task config with "
                      "data: {path: ..., input: [fields], target: output, id: id}",
                      highlight=False)
        return
    rows = list_traces(store, prompt)[-limit:]
    table = Table(title="Traces", title_justify="left")
    for col in ("id", "prompt", "status", "inputs", "output / error", "tokens", "seconds"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["prompt_name"], str(r["status"]), clip(r["inputs"], 40),
                      clip(r["output"] if r["status"] == 200 else r["error"], 50),
                      str(r["tokens_in"] + r["tokens_out"]), f"{r['seconds']:.3f}")
    console.print(table)


def inject(
    url: str = typer.Option(..., "--url", help="The served endpoint, e.g. "
                            "http://127.0.0.1:8000/v1"),
    prompt: str = typer.Option(None, "--prompt", "-p", help="The served NAME@TAG in this store: "
                               "its fields shape the attacks and its instruction is what a "
                               "leak would reveal."),
    api_key_env: str = typer.Option(DEFAULT_KEY_ENV, "--api-key-env", metavar="VAR"),
    suite: Path = typer.Option(None, "--suite", help="Attack suite JSON (default: built-in)."),
    field: str = typer.Option(None, "--field", help="Template field that carries the attack."),
    concurrency: int = typer.Option(4, "--concurrency", min=1),
    json_out: Path = typer.Option(None, "--json", help="Also write the full report here."),
    max_rate: float = typer.Option(None, "--max-rate", min=0.0, max=1.0,
                                   help="Exit 1 when the attack success rate is above this."),
) -> None:
    """Run prompt-injection and jailbreak attempts against a served prompt."""
    from ..injection import load_suite, run_injection

    instruction, fields = _prompt_facts(prompt)
    attacks = load_suite(suite)
    with console.status(f"sending {len(attacks)} attacks to {url}…"):
        report = run_injection(url, api_key=os.environ.get(api_key_env) or None,
                               instruction=instruction, fields=fields, target_field=field,
                               suite=attacks, concurrency=concurrency)
    data = report.to_dict()
    _print_report(data)
    if json_out is not None:
        json_out.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    if data["errors"] == len(attacks):
        fail("every attack request failed; check --url and the API key (see errors above)")
    if max_rate is not None and data["attack_success_rate"] > max_rate:
        raise typer.Exit(1)


def _prompt_facts(ref: str | None) -> tuple[str | None, list[str] | None]:
    if ref is None:
        return None, None
    from ..prompt import Prompt, parse_prompt_ref

    name, version = parse_prompt_ref(ref)
    row = State.store().get_prompt(name, version)
    prompt = Prompt.model_validate(json.loads(row["body"]))
    return prompt.system_text() or None, sorted(prompt.variables())


def _print_report(data: dict) -> None:
    from rich.table import Table

    from .common import fmt_score

    table = Table(title="Prompt-injection attacks", title_justify="left")
    for col in ("category", "attacks", "got through", "errors", "not judged"):
        table.add_column(col, justify="left" if col == "category" else "right")
    for category, row in sorted(data["by_category"].items()):
        table.add_row(category, str(row["n"]), str(row["succeeded"]), str(row["errors"]),
                      str(row["not_judged"]))
    console.print(table)
    rate = fmt_score(data["attack_success_rate"], data["ci_low"], data["ci_high"])
    console.print(f"attack success rate {rate} (bootstrap 95% CI; Wilson "
                  f"[{data['wilson_low']:.3f}, {data['wilson_high']:.3f}]) over "
                  f"{data['judged']} judged attack(s)", highlight=False)
    for item in data["got_through"]:
        console.print(f"[red]got through[/] {item['id']} ({item['category']}): "
                      f"{clip(item['output'], 90)}", highlight=False)
    if data["judged"] < data["attacks"] - data["errors"]:
        console.print("[dim]prompt-leak attacks are judged only with --prompt NAME@TAG[/]")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the promptmill app."""
    app.command("serve")(serve)
    app.command("traces")(traces)
    app.command("inject")(inject)
