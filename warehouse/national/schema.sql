-- The national warehouse: what only the union of the regions shows, per quarter
-- (pipelines/national). Region warehouses keep their own findings; rows here are
-- cross-region only: the two member rows, or the death record and the member, lie in two
-- different regions. IDs are the regions' own (户编号, 成员编号, 记录编号), each with its region.

CREATE SCHEMA IF NOT EXISTS national;

-- One person enrolled in two regions: the pairs of member rows (rule D03's basis).
CREATE TABLE IF NOT EXISTS national.roster_duplicates (
    quarter            VARCHAR,
    region_l           VARCHAR,
    member_id_l        VARCHAR,
    household_id_l     VARCHAR,
    region_r           VARCHAR,
    member_id_r        VARCHAR,
    household_id_r     VARCHAR,
    match_probability  DOUBLE,
    match_method       VARCHAR
);

-- Death records registered in one region linked to a member enrolled in another (D01's basis).
CREATE TABLE IF NOT EXISTS national.death_links (
    quarter            VARCHAR,
    death_region       VARCHAR,
    record_key         VARCHAR,
    member_region      VARCHAR,
    member_id          VARCHAR,
    household_id       VARCHAR,
    match_probability  DOUBLE,
    match_method       VARCHAR
);

-- The cross-region warnings, with the columns of marts.warnings (the same warning_id for
-- the same household, member and rule) plus the member's region and the other regions.
CREATE TABLE IF NOT EXISTS national.warnings (
    quarter             VARCHAR,
    region              VARCHAR,
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
    status              VARCHAR,   -- new | persisting
    first_seen_quarter  VARCHAR,
    other_regions       VARCHAR[]
);

-- One row per national run that published a quarter.
CREATE TABLE IF NOT EXISTS national.runs (
    run_id                  VARCHAR,
    quarter                 VARCHAR,
    regions                 VARCHAR[],
    region_runs             JSON,      -- region -> the run that published its quarter
    link_backend            VARCHAR,
    members                 BIGINT,
    death_records           BIGINT,
    roster_pairs_compared   BIGINT,
    record_pairs_compared   BIGINT,
    roster_duplicates       BIGINT,
    death_links             BIGINT,
    warnings                BIGINT,
    seconds                 JSON,      -- stage -> seconds (union, link, rules)
    link_seconds            JSON,      -- the linker's steps -> seconds (roster_dedupe: the cross-region deduplication)
    published_at            TIMESTAMP
);
