"""Every audit action there is, with what it means in one line.

`record(...)` refuses a name that is not here, and a test reads every `record(...)` call in the
code, so the log never holds an action nobody described. The audit review groups its filters by
the part before the first dot (`GROUPS`).

Changes to rows through the inventory pages and Django's admin are named `<model>.<verb>`
(`host.updated`, `user.deleted`): every model in `ROW_MODELS` with every verb in `ROW_VERBS`.
"""

ACTIONS: dict[str, str] = {
    # Signing in and out, the second factor, sudo mode
    "auth.login": "someone signed in with their password",
    "auth.login_failed": "a sign-in was refused (wrong user name or password)",
    "auth.locked_out": "too many failed sign-ins: the account or address is locked out",
    "auth.lockout_expired": "a lockout ended when its cool-off time passed",
    "auth.logout": "someone signed out",
    "auth.session_expired": "a session ended because it was idle or too old",
    "auth.reauthenticated": "someone confirmed their password again (sudo mode)",
    "auth.reauthentication_failed": "a password confirmation for sudo mode was wrong",
    "auth.2fa_secret_shown": "a new authenticator secret was shown for enrolment",
    "auth.2fa_enrolled": "someone turned on their second factor",
    "auth.2fa_enrol_failed": "a first code for a new authenticator was wrong",
    "auth.2fa_verified": "a session was verified with the second factor",
    "auth.2fa_failed": "a second-factor code was wrong or already used",
    "auth.2fa_recovery_codes_replaced": "someone made new recovery codes (the old ones died)",
    # Who may do what
    "access.denied": "the policy refused a request; the target and reason say what and why",
    "access.report_exported": "someone exported the access report",
    "grant.created": "a role was granted to a person or group",
    "grant.changed": "a grant's expiry was changed",
    "grant.revoked": "a grant was revoked",
    "grant.refused": "a grant was refused (not allowed, or the request was invalid)",
    "grant.change.refused": "a change of a grant's expiry was refused",
    "grant.revoke.refused": "revoking a grant was refused",
    "api_token.created": "someone created a personal API token (its secret is never logged)",
    "api_token.new_address": "an API token was used from an address it had not come from before",
    "api_token.revoked": "an API token was revoked",
    "user.password_set": "a person chose their password with their one-time link",
    "user.deactivated": "an account was deactivated; its access ended",
    "user.create.refused": "creating an account was refused",
    "user.deactivate.refused": "deactivating an account was refused",
    # The inventory and credentials
    "growthphase.made_current": "a growth phase became the current one",
    "credential.keys_rotated": "stored private keys were re-encrypted under a new key",
    "accessattempt.expired_cleaned": "expired lockout records were removed through the admin",
    # Host keys
    "host.host_key_scanned": "a host's SSH key was fetched for comparison",
    "host.host_key_scan_failed": "fetching a host's SSH key failed (the address is recorded)",
    "host.host_key_scan_refused": "a host-key scan was refused: too many scans in a short time",
    "host.host_key_trusted": "a host's SSH key was compared and trusted (pinned)",
    "host.host_key_mismatch": "a host presented a key other than the pinned one",
    # Runs
    "run.requested": "a run was requested, with its exact script and parameters",
    "run.refused": "a launch, decision or cancel was refused: host not ready, run already moved on",
    "run.approved": "a second person approved a run in an approval zone",
    "run.rejected": "a second person rejected a run",
    "run.cancel_requested": "someone asked to cancel a run",
    "run.started": "a worker claimed a run and began it",
    "run.succeeded": "a run finished with exit status 0",
    "run.failed": "a run failed (exit status, unreachable, refused key, ...)",
    "run.cancelled": "a run was cancelled",
    "run.timed_out": "a run ran past its time limit and was killed",
    "run.lost": "a run's worker stopped reporting; the run was marked lost",
    "run.redelivered": "a queued run missing from Redis (or taken by a worker that died before "
    "claiming it) was delivered again",
    "run.waiting_for_host": "a host-changing run found its host busy: it waits in line, in launch "
    "order, with no worker held",
    "run.resolved": "the host said what became of a lost run (succeeded or failed after its "
    "worker was lost, still running, killed, or no record)",
    "run.check_requested": "someone asked a lost run's host what happened to it",
    "run.kill_on_host_requested": "someone decided to kill what still runs of a lost run on its "
    "host",
    "run.next_in_line": "the host was freed: the first run waiting in line for it was queued",
    "run.refused_by_policy": "a worker refused a run: its requester's right ended since launch",
    "run.freeze_overridden": "a superadmin launched a host-changing run during a freeze, with a "
    "reason",
    # Growth plans
    "plan.applied": "someone applied a growth plan: its ordered steps, parameters and inputs",
    "plan.refused": "applying or resuming a growth plan was refused (rights, hosts, parameters)",
    "plan.step_in_place": "a plan step was already satisfied on its host (asked there): skipped",
    "plan.step_launched": "a plan step started its run",
    "plan.step_succeeded": "a plan step's run succeeded",
    "plan.step_failed": "a plan step failed; the steps after it wait",
    "plan.resumed": "someone resumed a stopped plan from its failed step",
    "plan.succeeded": "every step of a plan succeeded; the stack is in the plan's phase",
    # The audit log itself
    "audit.verify_requested": "someone (or the daily check) asked for the chain to be verified",
    "audit.exported": "someone exported audit events (CSV or JSON Lines), with the filter used",
    "audit.verified": "a verification found the chain intact and matching its copy off the box",
    "audit.chain_broken": "a verification found the chain broken or rewritten (the first bad "
    "event is named)",
    "audit.prune_requested": "a superadmin asked to archive and prune events older than N days",
    "audit.pruned": "events were archived to a checked file and pruned; records the archive's "
    "SHA-256 and the last pruned event's hash, where the remaining chain starts",
    "audit.prune_refused": "an archive-and-prune was refused (broken chain, off-box copy behind, "
    "another prune first); nothing was removed",
    "audit.archive_downloaded": "someone downloaded an archive of pruned events",
    # Schedules
    "schedule.fired": "a schedule's time came and its runs were launched as its owner",
    "schedule.skipped": "a schedule's time came and was skipped (previous run going, no host)",
    "schedule.refused": "a schedule's time came and its launch was refused (policy, host)",
    "schedule.missed": "a schedule's times passed while the scheduler was not running",
    "schedule.disabled": "a schedule was disabled by the scheduler: its owner lost the right",
    # Alerts
    "alert.raised": "a condition needs someone: a failing check, a missed or failed scheduled "
    "run, a changed host key (once until it recovers)",
    "alert.cleared": "the condition behind an alert recovered",
    "alert.acknowledged": "a person said they are on an alert",
    "service.state_changed": "a health check changed a service's state (running, degraded, failed)",
}

ROW_MODELS: dict[str, str] = {
    "zone": "a zone",
    "host": "a host",
    "service": "a service",
    "growthphase": "a growth phase",
    "placement": "a service placement of a phase",
    "maintenance": "a maintenance window or freeze",
    "schedule": "a schedule (a recipe that runs by itself)",
    "credential": "an SSH credential",
    "grant": "a grant (through the admin)",
    "user": "an account",
    "group": "a group of people",
    "totpdevice": "an authenticator device",
    "staticdevice": "a set of recovery codes",
    "accessattempt": "a lockout record",
    "accesslog": "a sign-in log record",
    "accessfailurelog": "a failed sign-in record",
}
ROW_VERBS: dict[str, str] = {
    "created": "was added",
    "updated": "was changed",
    "deleted": "was deleted",
}


def meaning(action: str) -> str | None:
    """The one-line meaning of an action, or None when it is not catalogued."""
    if action in ACTIONS:
        return ACTIONS[action]
    model, _, verb = action.partition(".")
    if model in ROW_MODELS and verb in ROW_VERBS:
        return f"{ROW_MODELS[model]} {ROW_VERBS[verb]}"
    return None


def all_actions() -> list[str]:
    rows = [f"{m}.{v}" for m in ROW_MODELS for v in ROW_VERBS]
    return sorted(set(ACTIONS) | set(rows))


def groups() -> dict[str, list[str]]:
    """Actions by the part before the first dot (auth, access, grant, run, host, ...)."""
    grouped: dict[str, list[str]] = {}
    for action in all_actions():
        grouped.setdefault(action.split(".", 1)[0], []).append(action)
    return grouped
