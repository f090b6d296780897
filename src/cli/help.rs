//! The examples at the end of each command's `--help`, and the exit codes (a macro, so that
//! `plan` and `apply` can join both into one literal).

/// The exit codes, as `--help` and the README show them ([`super::exit_code`] decides them).
macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  0   ok
  1   problems found, or a failure
  2   changes pending (`plan` and `apply` with --detailed-exitcode)
  64  usage error: an unknown command or flag, a missing or malformed argument"
    };
}
pub(crate) use exit_codes;

pub const VALIDATE: &str = "\
Examples:
  dsrctl validate                          # the whole project: config, playbooks, requests
  dsrctl validate policies/crm.yaml        # one file and the playbooks that refer to it
  dsrctl validate --format sarif > dsrctl.sarif   # for code scanning
  dsrctl validate --no-cache               # every file afresh (the cache is .dsrctl/validate.cache)";

pub const DATASET_INTROSPECT: &str = "\
Examples:
  dsrctl dataset introspect --connector crm -o policies/crm.yaml   # a draft to review
  dsrctl dataset introspect --connector shop --tenant eu --schema sales";

pub const COVERAGE: &str = "\
Examples:
  dsrctl coverage                          # every SQL connector's schema against its dataset
  dsrctl coverage --tenant eu --format github    # annotations in a CI job; exits 1 on a gap";

pub const IMPORT_FIDES: &str = "\
Examples:
  dsrctl import fides fides/postgres_example.yml -o policies/shop.yaml
  dsrctl import fides dataset.yml --connector shop";

pub const SCHEMA: &str = "\
Examples:
  dsrctl schema playbook > playbook.schema.json
  dsrctl schema openapi > openapi.json     # the HTTP API of `serve --listen`
  dsrctl schema --write                    # all of them into schemas/";

pub const EXPLAIN: &str = "\
Examples:
  dsrctl explain                           # every code with its summary
  dsrctl explain missing-preview            # one code: meaning, a wrong and a right example";

pub const PLAN: &str = concat!(
    "\
Examples:
  dsrctl plan --offline requests/delete-jane.yaml    # the compiled steps; nothing contacted
  dsrctl plan requests/delete-jane.yaml -o plan.json  # dry run: reads only, saves the plan
  dsrctl plan requests/delete-jane.yaml --format markdown
  dsrctl plan --compare origin/main                  # what a playbook change does, for a PR

",
    exit_codes!()
);

pub const SHOW: &str = "\
Examples:
  dsrctl show plan.json
  dsrctl show plan.json --format markdown > plan.md";

pub const APPLY: &str = concat!(
    "\
Examples:
  dsrctl apply plan.json --approve \"Dana (DPO)\"

",
    exit_codes!()
);

pub const RUN: &str = "\
Examples:
  dsrctl run requests/delete-jane.yaml --approve \"Dana (DPO)\"
  dsrctl run requests/access-jane.yaml                # reads only: no approval needed
  dsrctl run requests/delete-jane.yaml --again --reason \"new CRM tenant\"";

pub const RESUME: &str = "\
Examples:
  dsrctl resume 0193f2                     # a run id or a unique prefix (see `dsrctl runs`)
  dsrctl resume 0193f2 --replan            # with today's playbooks";

pub const REPLAN: &str = "\
Examples:
  dsrctl replan 0193f2                     # shows what changes for the steps left to do
  dsrctl replan 0193f2 --approve \"Dana (DPO)\"";

pub const ABANDON: &str = "\
Examples:
  dsrctl abandon 0193f2 --reason \"the subject withdrew the request\" --by Dana";

pub const STATUS: &str = "\
Examples:
  dsrctl status                            # the newest run
  dsrctl status 0193f2 --format json";

pub const RUNS: &str = "\
Examples:
  dsrctl runs
  dsrctl runs --limit 10 --format json";

pub const REPORT: &str = "\
Examples:
  dsrctl report 0193f2                                   # evidence, Markdown
  dsrctl report 0193f2 --format html -o evidence.html
  dsrctl report 0193f2 --template letter --package out/  # letter + export package
  dsrctl report 0193f2 --deliver                         # package to the configured storage";

pub const TEST: &str = "\
Examples:
  dsrctl test
  dsrctl test --format junit > dsrctl-tests.xml";

pub const INIT: &str = "\
Examples:
  dsrctl init my-privacy-project           # a starter project that validates
  dsrctl init --example contoso            # a project that runs against `dsrctl emulate`";

pub const EMULATE: &str = "\
Examples:
  dsrctl emulate                           # on 127.0.0.1:8790, as `init --example` expects
  dsrctl emulate --port 0                  # a free port (printed)
  dsrctl emulate --service stripe          # a SaaS API of the catalogue";

pub const CATALOGUE: &str = "\
Examples:
  dsrctl catalogue list                    # the services, what each kind does there
  dsrctl catalogue add stripe              # playbook, tests and connector stub";

pub const CATALOGUE_LIST: &str = "\
Examples:
  dsrctl catalogue list";

pub const CATALOGUE_ADD: &str = "\
Examples:
  dsrctl catalogue add stripe
  dsrctl catalogue add zendesk             # then set its base URL and secret";

pub const DEMO: &str = "\
Examples:
  dsrctl demo
  dsrctl demo --dir contoso-demo           # keep the project to look at afterwards
  dsrctl demo --serve                      # then the operator console on 127.0.0.1:8080
  dsrctl demo --serve 127.0.0.1:9000";

pub const COMPLETIONS: &str = "\
Examples:
  dsrctl completions bash > ~/.local/share/bash-completion/completions/dsrctl
  dsrctl completions zsh > \"${fpath[1]}/_dsrctl\"";

pub const REQUEST: &str = "\
Examples:
  dsrctl request new --kind delete --tenant acme --email jane@example.com
  dsrctl request new --file requests/delete-jane.yaml
  dsrctl request approve r-2026-0001 --by \"Dana (DPO)\"
  dsrctl request extend r-2026-0001 --reason \"complex request\" --by Dana";

pub const REQUESTS: &str = "\
Examples:
  dsrctl requests
  dsrctl requests --format json
  dsrctl requests --subject email=jane@example.com   # one subject's, by the keyed index";

pub const PURGE: &str = "\
Examples:
  dsrctl purge --closed-before 2025-12-01 --dry-run   # what would go
  dsrctl purge --closed-before 2025-12-01             # closed before then: personal data goes";

pub const TASK: &str = "\
Examples:
  dsrctl task list
  dsrctl task done 0193f2 crm/delete-tickets --by Sam --evidence ticket-4711.pdf
  dsrctl task fail 0193f2 crm/delete-tickets --by Sam --note \"the vendor refused\"";

pub const TICK: &str = "\
Examples:
  dsrctl tick                              # from cron or CI
  dsrctl tick --now 2027-01-01T00:00:00Z   # act as if it were then";

pub const SERVE: &str = "\
Examples:
  dsrctl serve --every 5m
  dsrctl serve --schedule \"*/5 * * * *\" --worker worker-a
  dsrctl serve --listen 127.0.0.1:8080 --every 30s
  dsrctl serve --listen 0.0.0.0:8443 --tls-cert tls/cert.pem --tls-key tls/key.pem
  dsrctl serve --listen 127.0.0.1:8080 --drain-timeout 60s   # SIGTERM: hand runs over within 60s";

pub const AUDIT: &str = "\
Examples:
  dsrctl audit verify
  dsrctl audit checkpoint -o checkpoint-2026-11.json
  dsrctl audit verify --against checkpoint-2026-11.json
  dsrctl audit export --format json > audit.json";

pub const REQUEST_NEW: &str = "\
Examples:
  dsrctl request new --kind delete --tenant acme --email jane@example.com
  dsrctl request new --kind access --tenant acme --email jane@example.com --jurisdiction ccpa
  dsrctl request new --file requests/delete-jane.yaml";

pub const REQUEST_APPROVE: &str = "\
Examples:
  dsrctl request approve r-2026-0001 --by \"Dana (DPO)\"";

pub const REQUEST_DECLINE: &str = "\
Examples:
  dsrctl request decline r-2026-0001 --reason \"identity could not be verified\" --by Dana";

pub const REQUEST_EXTEND: &str = "\
Examples:
  dsrctl request extend r-2026-0001 --reason \"complex request across 40 systems\" --by Dana";

pub const REQUEST_IMPORT: &str = "\
Examples:
  dsrctl request import tickets.csv --tenant contoso --by Dana
  dsrctl request import agent-requests.jsonl";

pub const TASK_LIST: &str = "\
Examples:
  dsrctl task list
  dsrctl task list --format json";

pub const TASK_DONE: &str = "\
Examples:
  dsrctl task done 0193f2 crm/delete-tickets --by Sam --evidence ticket-4711.pdf
  dsrctl task done 0193f2 crm/delete-tickets --by Sam --note \"nothing held\" --no-continue";

pub const TASK_FAIL: &str = "\
Examples:
  dsrctl task fail 0193f2 crm/delete-tickets --by Sam --note \"the vendor refused\"";

pub const AUDIT_VERIFY: &str = "\
Examples:
  dsrctl audit verify
  dsrctl audit verify --against checkpoint-2026-11.json
  dsrctl audit verify --against checkpoint-2026-11.json --public-key evidence.pub";

pub const AUDIT_CHECKPOINT: &str = "\
Examples:
  dsrctl audit checkpoint -o checkpoint-2026-11.json";

pub const EVIDENCE: &str = "\
Examples:
  dsrctl evidence public-key > evidence.pub
  dsrctl evidence verify evidence.json --public-key evidence.pub
  dsrctl evidence verify exports/r-2026-0042 --public-key evidence.pub";

pub const EVIDENCE_VERIFY: &str = "\
Examples:
  dsrctl evidence verify evidence.json --public-key evidence.pub
  dsrctl evidence verify evidence.html --public-key evidence.pub
  dsrctl evidence verify exports/r-2026-0042 --public-key evidence.pub";

pub const EVIDENCE_PUBLIC_KEY: &str = "\
Examples:
  dsrctl evidence public-key > evidence.pub";

pub const AUDIT_EXPORT: &str = "\
Examples:
  dsrctl audit export > audit.jsonl
  dsrctl audit export --format json";

pub const LSP: &str = "\
Examples:
  dsrctl lsp                               # started by the editor, in the project directory";
