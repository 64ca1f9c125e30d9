-- The national step's warnings for one quarter, in the shape of marts.warnings: the cross-
-- region findings of rules D01 and D03 (rules.findings of the national work database, whose
-- IDs are written `<region>/<id>`), with each member's region, place, name and ID, the
-- warning_id the region would give the same household, member and rule, and the lifecycle
-- status against the national warnings of the quarter before (`__previous`).
with

findings as (
    select * from rules.findings where quarter = $quarter
),

households as (
    select household_id, county_code, township, village from staging.households where quarter = $quarter
),

members as (
    select member_id, name, coalesce(id_number, id_number_raw) as id_number from staging.members where quarter = $quarter
),

located as (
    select
        f.*,
        split_part(f.household_id, '/', 1) as region,
        substr(f.household_id, length(split_part(f.household_id, '/', 1)) + 2) as own_household_id,
        substr(f.member_id, length(split_part(f.member_id, '/', 1)) + 2) as own_member_id,
        -- the basis names the other side: `death:<region>/<record>` or `member:<region>/<member>`
        list_sort(list_distinct(list_transform(f.basis, lambda b: regexp_extract(b, '^[^:]+:([^/]+)/', 1)))) as other_regions
    from findings as f
),

identified as (
    select
        *,
        'W' || substr(sha256(rule_code || '|' || own_household_id || '|' || coalesce(own_member_id, '')), 1, 16) as warning_id
    from located
),

final as (
    select
        i.quarter,
        i.region,
        i.warning_id,
        i.rule_code,
        r.title as rule_title,
        i.rule_kind,
        i.severity,
        i.own_household_id as household_id,
        i.own_member_id as member_id,
        h.county_code,
        h.township,
        h.village,
        m.name,
        m.id_number,
        i.evidence,
        i.policy_ref,
        i.action,
        i.due_date,
        case when p.warning_id is null then 'new' else 'persisting' end as status,
        coalesce(p.first_seen_quarter, i.quarter) as first_seen_quarter,
        i.other_regions
    from identified as i
    left join rule_catalog as r using (rule_code)
    left join households as h on h.household_id = i.household_id
    left join members as m on m.member_id = i.member_id
    left join __previous as p on p.region = i.region and p.warning_id = i.warning_id
)

select * from final
