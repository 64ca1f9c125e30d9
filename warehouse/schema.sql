-- The warehouse's fixed tables. Applied on every connection (idempotent).
-- Staging and quarantine tables, one per source, are created from the source
-- specifications (sources/aliases/*.yaml); see sources.registry.

CREATE SCHEMA IF NOT EXISTS staging;     -- cleaned, typed deliveries, one row per record, by delivery quarter
CREATE SCHEMA IF NOT EXISTS quarantine;  -- every row read but not loaded, with the reason
CREATE SCHEMA IF NOT EXISTS audit;       -- what was read, when, with what outcome
CREATE SCHEMA IF NOT EXISTS linked;      -- extract records linked to roster members
CREATE SCHEMA IF NOT EXISTS rules;       -- each rule family's findings for a quarter, before publication
CREATE SCHEMA IF NOT EXISTS marts;       -- what caseworkers and analysts read (published per quarter, atomically)

-- One row per input file per run. rows_read = rows_loaded + rows_quarantined, always.
-- outcome: loaded | loaded_with_quarantine | empty | refused | ignored
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
    logged_at         TIMESTAMP
);

-- One row per quarter publication (the marts swap), for lineage and the report.
CREATE TABLE IF NOT EXISTS audit.publications (
    run_id        VARCHAR,
    quarter       VARCHAR,
    published_at  TIMESTAMP,
    warnings      BIGINT,
    households    BIGINT
);

-- Every extract record linked to a roster member in a quarter (CONTRACT.md §3).
CREATE TABLE IF NOT EXISTS linked.matches (
    quarter            VARCHAR,
    source             VARCHAR,
    record_key         VARCHAR,
    member_id          VARCHAR,
    match_probability  DOUBLE,
    match_method       VARCHAR
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
    parameters     JSON
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
    first_seen_quarter  VARCHAR
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
    first_seen_quarter  VARCHAR
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

-- Every file written for caseworkers or analysts: which township, when, how many rows.
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
