-- marts.warnings_masked: the warnings for routine analysis. ID numbers keep their first
-- and last four characters (1405**********123X), names only the surname, and a person key
-- (a keyed hash of the ID number, the same in every quarter) lets analysts count people.
-- ID-like numbers inside the evidence (certificate and student numbers carry the ID) are
-- masked the same way, and so are the records a warning rests on (evidence.records: the
-- ID as the department wrote it, the names as written and on the roster).
with

warnings as (
    select * from __warnings
),

secret as (
    select value as secret from audit.settings where name = 'person_key_secret'
),

final as (
    select
        w.quarter,
        w.warning_id,
        w.rule_code,
        w.rule_title,
        w.rule_kind,
        w.severity,
        w.household_id,
        w.member_id,
        w.county_code,
        w.township,
        w.village,
        -- the surname: a two-character one (the same list as the names in the evidence below)
        -- or the first character
        nullif(regexp_extract(w.name, '^(欧阳|司马|上官|诸葛|东方|皇甫|尉迟|公孙|慕容|长孙|宇文|司徒|夏侯|轩辕|令狐|钟离|端木|南宫|西门|独孤|.)', 1), '')
            as surname,
        case
            when w.id_number is null then null
            when length(w.id_number) >= 8
                then left(w.id_number, 4) || repeat('*', length(w.id_number) - 8) || right(w.id_number, 4)
            else repeat('*', length(w.id_number))
        end as id_number_masked,
        substr(sha256(s.secret || '|' || coalesce(w.id_number, 'member:' || w.member_id, 'household:' || w.household_id)), 1, 20)
            as person_key,
        regexp_replace(
            regexp_replace(
                regexp_replace(
                    regexp_replace(w.evidence::varchar, '(\d{4})\d{7,10}(\d{3}[\dXx])', '\1**********\2', 'g'),
                    '"id_number_as_written":"([^"]{4})[^"]{4,}([^"]{4})"', '"id_number_as_written":"\1**********\2"', 'g'),
                '"id_number_as_written":"[^"]{1,11}"', '"id_number_as_written":"********"', 'g'),
            -- "name_as_written":"胡欣伟" -> "name_as_written":"胡" (a literal pattern: DuckDB
            -- compiles it once, not per row)
            '"(name_as_written|roster_name)":"(欧阳|司马|上官|诸葛|东方|皇甫|尉迟|公孙|慕容|长孙|宇文|司徒|夏侯|轩辕|令狐|钟离|端木|南宫|西门|独孤|[^"])[^"]*"',
            '"\1":"\2"', 'g')::json as evidence,
        w.policy_ref,
        w.action,
        w.due_date,
        w.status,
        w.first_seen_quarter,
        w.verification_result,  -- the note stays out: caseworkers write names in it
        w.verified_quarter
    from warnings as w
    cross join secret as s
)

select * from final
