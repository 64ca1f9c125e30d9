-- The warehouse's fixed tables. Applied on every connection (idempotent).
-- Staging and quarantine tables, one per source, are created from the source
-- specifications (sources/departments/*.yaml); see sources.registry.

CREATE SCHEMA IF NOT EXISTS staging;     -- cleaned, typed deliveries, one row per record, by delivery quarter
CREATE SCHEMA IF NOT EXISTS quarantine;  -- every row read but not loaded, with the reason
CREATE SCHEMA IF NOT EXISTS audit;       -- what was read, when, with what outcome
CREATE SCHEMA IF NOT EXISTS linked;      -- extract records linked to roster members
CREATE SCHEMA IF NOT EXISTS rules;       -- each rule family's findings for a quarter, before publication
CREATE SCHEMA IF NOT EXISTS marts;       -- what caseworkers and analysts read (published per quarter, atomically)

-- One row per input file per run. rows_read = rows_loaded + rows_quarantined, always.
-- outcome: loaded | loaded_with_quarantine | empty | refused | ignored | interrupted (the run
-- died before it published: marked by the next run, pipelines/recovery.py)
CREATE TABLE IF NOT EXISTS audit.ingest_log (
    run_id            VARCHAR,
    quarter           VARCHAR,
    source            VARCHAR,
    file              VARCHAR,
    file_format       VARCHAR,
    encoding          VARCHAR,
    header_row        INTEGER,
    rows_read         BIGINT,
    rows_loaded       BIGINT,
    rows_quarantined  BIGINT,
    checksum          VARCHAR,
    outcome           VARCHAR,
    message           VARCHAR,
    logged_at         TIMESTAMP,
    quarantine_reasons JSON,      -- the file's quarantined rows per reason code, e.g. {"date_after_extract": 1, "negative_amount": 2}
    records_counted   BIGINT,     -- CSV: records below the header by a second, independent count (= rows_read)
    preamble_lines    INTEGER     -- lines above the data (titles, blank lines, the header): audit.skipped_lines
);

-- Drops against last quarter's delivery that the operator accepted (`--accept-drop`).
CREATE TABLE IF NOT EXISTS audit.accepted_drops (
    run_id       VARCHAR,
    quarter      VARCHAR,
    source       VARCHAR,
    scope        VARCHAR,     -- a county code, a file's stem, or * (the whole source)
    description  VARCHAR,
    rows_now     BIGINT,
    rows_before  BIGINT,
    accepted_at  TIMESTAMP
);

-- The lines of a delivered file that are not records (title rows, blank rows above the
-- header, the header itself), by their text's hash, so a file's lines add up without
-- keeping their text.
CREATE TABLE IF NOT EXISTS audit.skipped_lines (
    run_id       VARCHAR,
    quarter      VARCHAR,
    source       VARCHAR,
    file         VARCHAR,
    line         INTEGER,
    text_sha256  VARCHAR,
    reason       VARCHAR,
    logged_at    TIMESTAMP
);

-- One row per quarter publication (the marts swap), for lineage and the report.
CREATE TABLE IF NOT EXISTS audit.publications (
    run_id        VARCHAR,
    quarter       VARCHAR,
    published_at  TIMESTAMP,
    warnings      BIGINT,
    households    BIGINT
);

-- One row per `doudi run` of this warehouse, written when the run takes the warehouse lock
-- and when it ends (pipelines/recovery.py). outcome: running | published | not_published
-- (refused input, a failed check, an error: see ingest_log and check_results) | interrupted
-- (the process died; found and marked by the next run, finished_at stays empty).
CREATE TABLE IF NOT EXISTS audit.runs (
    run_id       VARCHAR,
    quarter      VARCHAR,
    region       VARCHAR,
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    outcome      VARCHAR
);

-- Every extract record linked to a roster member in a quarter (CONTRACT.md §3), with how
-- the record's ID and name compare with the member's (pipelines/link/corroboration.py).
CREATE TABLE IF NOT EXISTS linked.matches (
    quarter            VARCHAR,
    source             VARCHAR,
    record_key         VARCHAR,
    member_id          VARCHAR,
    match_probability  DOUBLE,
    match_method       VARCHAR,
    id_agreement       VARCHAR,   -- same | upgraded_15 | from_certificate | from_student_no | same_invalid | one_digit | ...
    name_agreement     VARCHAR    -- same | normalised | variant | confirmed
);

-- Extract records that carry a roster member's ID under another person's name (rule Q02).
-- Not linked: no rule reads them as the member's, until a caseworker confirms (Q02 属实).
CREATE TABLE IF NOT EXISTS linked.identity_conflicts (
    quarter          VARCHAR,
    source           VARCHAR,
    record_key       VARCHAR,
    member_id        VARCHAR,
    name_as_written  VARCHAR
);

-- A rule family's findings for a quarter: the rows marts.warnings is built from.
CREATE TABLE IF NOT EXISTS rules.findings (
    quarter        VARCHAR,
    rule_code      VARCHAR,
    rule_kind      VARCHAR,
    household_id   VARCHAR,
    member_id      VARCHAR,
    severity       VARCHAR,
    due_date       DATE,
    action         VARCHAR,
    policy_ref     VARCHAR,
    evidence       JSON,
    parameters     JSON,
    basis          VARCHAR[]   -- the records (source:key) or roster facts the finding rests on
);

CREATE TABLE IF NOT EXISTS marts.warnings (
    quarter             VARCHAR,
    warning_id          VARCHAR,
    rule_code           VARCHAR,
    rule_title          VARCHAR,
    rule_kind           VARCHAR,
    severity            VARCHAR,
    household_id        VARCHAR,
    member_id           VARCHAR,
    county_code         VARCHAR,
    township            VARCHAR,
    village             VARCHAR,
    name                VARCHAR,
    id_number           VARCHAR,
    evidence            JSON,
    policy_ref          VARCHAR,
    action              VARCHAR,
    due_date            DATE,
    status              VARCHAR,
    first_seen_quarter  VARCHAR,
    evidence_basis      VARCHAR,   -- a fingerprint of what the warning rests on (rules.findings.basis)
    verification_result VARCHAR,   -- the latest caseworker result returned for this warning: 属实 | 不属实 | 已处理
    verification_note   VARCHAR,
    verified_quarter    VARCHAR    -- the quarter of the list the result was written on
);

-- One row per flagged household per quarter, in priority order (priority 1 first).
CREATE TABLE IF NOT EXISTS marts.household_cases (
    quarter              VARCHAR,
    priority             INTEGER,
    household_id         VARCHAR,
    county_code          VARCHAR,
    township             VARCHAR,
    village              VARCHAR,
    category             VARCHAR,
    household_size       INTEGER,
    head_name            VARCHAR,
    top_severity         VARCHAR,
    has_ineligibility    BOOLEAN,
    warning_count        INTEGER,
    ineligibility_count  INTEGER,
    need_count           INTEGER,
    data_quality_count   INTEGER,
    rule_codes           VARCHAR,
    earliest_due_date    DATE,
    overdue              BOOLEAN,
    new_warning_count    INTEGER
);

CREATE TABLE IF NOT EXISTS marts.quarterly_comparison (
    quarter             VARCHAR,
    county_code         VARCHAR,
    rule_code           VARCHAR,
    count_this_quarter  INTEGER,
    count_last_quarter  INTEGER,
    count_new           INTEGER,
    count_persisting    INTEGER,
    count_resolved      INTEGER
);

-- The warnings for routine analysis: no raw ID numbers, surnames only, and a stable
-- pseudonymous person key (a keyed hash of the ID number).
CREATE TABLE IF NOT EXISTS marts.warnings_masked (
    quarter             VARCHAR,
    warning_id          VARCHAR,
    rule_code           VARCHAR,
    rule_title          VARCHAR,
    rule_kind           VARCHAR,
    severity            VARCHAR,
    household_id        VARCHAR,
    member_id           VARCHAR,
    county_code         VARCHAR,
    township            VARCHAR,
    village             VARCHAR,
    surname             VARCHAR,
    id_number_masked    VARCHAR,
    person_key          VARCHAR,
    evidence            JSON,     -- with every ID-like number in it masked the same way
    policy_ref          VARCHAR,
    action              VARCHAR,
    due_date            DATE,
    status              VARCHAR,
    first_seen_quarter  VARCHAR,
    verification_result VARCHAR,
    verified_quarter    VARCHAR
);

-- The results caseworkers returned (verifications/), per delivery quarter: each warning's
-- latest result with the rule and place of the warning it answers; matched = false when
-- the 预警编号 is not on the list of the quarter it refers to.
CREATE TABLE IF NOT EXISTS marts.verification_results (
    quarter       VARCHAR,   -- the quarter the result was delivered with
    warning_id    VARCHAR,
    list_quarter  VARCHAR,   -- the quarter of the list it answers
    rule_code     VARCHAR,
    rule_title    VARCHAR,
    county_code   VARCHAR,
    township      VARCHAR,
    household_id  VARCHAR,
    member_id     VARCHAR,
    result        VARCHAR,   -- 属实 | 不属实 | 已处理
    note          VARCHAR,
    source_file   VARCHAR,
    source_row    BIGINT,
    matched       BOOLEAN
);

-- A secret per warehouse for the pseudonymous person key (created once).
CREATE TABLE IF NOT EXISTS audit.settings (
    name   VARCHAR PRIMARY KEY,
    value  VARCHAR
);

-- The outcome of every data check per run (the asset checks write here too, so a refused
-- quarter can be explained from the warehouse alone).
CREATE TABLE IF NOT EXISTS audit.check_results (
    run_id       VARCHAR,
    quarter      VARCHAR,
    asset        VARCHAR,
    check_name   VARCHAR,
    passed       BOOLEAN,
    blocking     BOOLEAN,
    description  VARCHAR,
    metadata     JSON,
    checked_at   TIMESTAMP
);

-- The files of a quarter's latest export for caseworkers or analysts, one row per file:
-- which township, when, how many rows (a rerun of the export replaces the quarter's rows).
CREATE TABLE IF NOT EXISTS audit.exports (
    run_id        VARCHAR,
    quarter       VARCHAR,
    kind          VARCHAR,   -- township_list | report
    county_code   VARCHAR,
    township      VARCHAR,
    file          VARCHAR,
    rows          INTEGER,
    households    INTEGER,
    written_at    TIMESTAMP
);

-- Roster members found to be one person (one ID, however written) in two households:
-- the pairs, and the person each member row belongs to. Rule D03 reads these.
CREATE TABLE IF NOT EXISTS linked.roster_duplicates (
    quarter            VARCHAR,
    member_id_l        VARCHAR,
    member_id_r        VARCHAR,
    match_probability  DOUBLE,
    match_method       VARCHAR
);

CREATE TABLE IF NOT EXISTS linked.roster_persons (
    quarter     VARCHAR,
    member_id   VARCHAR,
    person_key  VARCHAR,   -- the smallest member_id of the person's member rows
    members     INTEGER    -- how many member rows this person has in the quarter
);

-- What the linker did in each quarter: pairs compared per blocking rule, the prior used.
CREATE TABLE IF NOT EXISTS audit.link_runs (
    quarter        VARCHAR,
    model_version  VARCHAR,
    step           VARCHAR,   -- records | roster
    records_left   BIGINT,
    records_right  BIGINT,
    prior          DOUBLE,
    pairs_compared BIGINT,
    pairs_by_rule  JSON,
    links          BIGINT,
    linked_at      TIMESTAMP
);

-- Caseworkers' verdicts on links, from returned lists: a warning found 属实 (or 已处理)
-- confirms the links it rests on, 不属实 rejects them. Labels the linker can learn from
-- (splink's estimate_m_from_pairwise_labels), kept per delivery.
CREATE TABLE IF NOT EXISTS linked.link_labels (
    delivered_quarter  VARCHAR,
    source             VARCHAR,
    record_key         VARCHAR,
    member_id          VARCHAR,
    label              VARCHAR,   -- match | non_match
    warning_id         VARCHAR,
    rule_code          VARCHAR,
    list_quarter       VARCHAR
);

-- Columns added after the first release (older warehouses get them on connection).
ALTER TABLE rules.findings ADD COLUMN IF NOT EXISTS basis VARCHAR[];
ALTER TABLE marts.warnings ADD COLUMN IF NOT EXISTS evidence_basis VARCHAR;
ALTER TABLE marts.warnings ADD COLUMN IF NOT EXISTS verification_result VARCHAR;
ALTER TABLE marts.warnings ADD COLUMN IF NOT EXISTS verification_note VARCHAR;
ALTER TABLE marts.warnings ADD COLUMN IF NOT EXISTS verified_quarter VARCHAR;
ALTER TABLE marts.warnings_masked ADD COLUMN IF NOT EXISTS verification_result VARCHAR;
ALTER TABLE marts.warnings_masked ADD COLUMN IF NOT EXISTS verified_quarter VARCHAR;
ALTER TABLE linked.matches ADD COLUMN IF NOT EXISTS id_agreement VARCHAR;
ALTER TABLE linked.matches ADD COLUMN IF NOT EXISTS name_agreement VARCHAR;
ALTER TABLE audit.ingest_log ADD COLUMN IF NOT EXISTS quarantine_reasons JSON;
ALTER TABLE audit.ingest_log ADD COLUMN IF NOT EXISTS records_counted BIGINT;
ALTER TABLE audit.ingest_log ADD COLUMN IF NOT EXISTS preamble_lines INTEGER;

-- Views for analysts (docs/analysts.md). They read the masked warnings, so they carry no
-- ID number and no full name, and they are recreated on every writing connection.

-- Per quarter, county and rule: how many warnings, of which colour, how many new, persisting,
-- dismissed by a returned 不属实, past their due date, and how many households.
CREATE OR REPLACE VIEW marts.county_rule_summary AS
SELECT
    quarter,
    county_code,
    rule_code,
    any_value(rule_title) AS rule_title,
    count(*) FILTER (WHERE status <> 'resolved_by_verification') AS warnings,
    count(*) FILTER (WHERE status <> 'resolved_by_verification' AND severity = 'red') AS red,
    count(*) FILTER (WHERE status <> 'resolved_by_verification' AND severity = 'orange') AS orange,
    count(*) FILTER (WHERE status <> 'resolved_by_verification' AND severity = 'yellow') AS yellow,
    count(*) FILTER (WHERE status = 'new') AS new,
    count(*) FILTER (WHERE status = 'persisting') AS persisting,
    count(*) FILTER (WHERE status = 'resolved_by_verification') AS dismissed_by_verification,
    count(*) FILTER (WHERE status <> 'resolved_by_verification'
                      AND due_date <= last_day(make_date(substr(quarter, 1, 4)::INTEGER, substr(quarter, 6, 1)::INTEGER * 3, 1))) AS overdue,
    count(DISTINCT household_id) FILTER (WHERE status <> 'resolved_by_verification') AS households
FROM marts.warnings_masked
GROUP BY ALL;

-- Warnings still open whose due date fell on or before the end of their quarter: raised
-- again this quarter and not reported 已处理. days_overdue counts to the quarter's end.
CREATE OR REPLACE VIEW marts.overdue_warnings AS
WITH dated AS (
    SELECT *, last_day(make_date(substr(quarter, 1, 4)::INTEGER, substr(quarter, 6, 1)::INTEGER * 3, 1)) AS quarter_end
    FROM marts.warnings_masked
)
SELECT
    quarter, county_code, township, village, warning_id, rule_code, rule_title, severity, household_id,
    due_date, (quarter_end - due_date) AS days_overdue, first_seen_quarter, status, verification_result
FROM dated
WHERE status <> 'resolved_by_verification'
  AND due_date <= quarter_end
  AND coalesce(verification_result, '') <> '已处理';

-- What caseworkers found when they checked: each warning's latest returned result, per rule.
-- observed_precision = (属实 + 已处理) / returned: the share of checked warnings that were right.
CREATE OR REPLACE VIEW marts.verification_precision AS
WITH latest AS (
    SELECT warning_id, rule_code, rule_title, result
    FROM marts.verification_results
    WHERE matched
    QUALIFY row_number() OVER (PARTITION BY warning_id ORDER BY quarter DESC) = 1
)
SELECT
    rule_code,
    any_value(rule_title) AS rule_title,
    count(*) AS returned,
    count(*) FILTER (WHERE result = '属实') AS confirmed,
    count(*) FILTER (WHERE result = '已处理') AS handled,
    count(*) FILTER (WHERE result = '不属实') AS rejected,
    round((count(*) FILTER (WHERE result IN ('属实', '已处理')))::DOUBLE / count(*), 4) AS observed_precision
FROM latest
GROUP BY rule_code;
