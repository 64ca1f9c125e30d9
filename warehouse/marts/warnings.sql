-- marts.warnings for one quarter: the rule families' findings with the household's place,
-- the person's name and ID, a warning_id that is the same for the same household, member
-- and rule in every quarter, and the lifecycle status against the quarter before.
with

findings as (
    select * from rules.findings where quarter = $quarter
),

households as (
    select household_id, county_code, township, village from staging.households where quarter = $quarter
),

members as (
    select member_id, household_id, name, coalesce(id_number, id_number_raw) as id_number, relation
    from staging.members where quarter = $quarter
),

heads as (  -- a household warning is addressed to the head of the household
    select household_id, name, id_number
    from members
    qualify row_number() over (partition by household_id order by relation = '户主' desc, member_id) = 1
),

previous as (
    select warning_id, first_seen_quarter from marts.warnings
    where quarter = $previous_quarter and status in ('new', 'persisting')
),

identified as (
    select
        f.*,
        'W' || substr(sha256(f.rule_code || '|' || f.household_id || '|' || coalesce(f.member_id, '')), 1, 16) as warning_id
    from findings as f
),

final as (
    select
        i.quarter,
        i.warning_id,
        i.rule_code,
        r.title as rule_title,
        i.rule_kind,
        i.severity,
        i.household_id,
        i.member_id,
        h.county_code,
        h.township,
        h.village,
        coalesce(m.name, hd.name) as name,
        coalesce(m.id_number, hd.id_number) as id_number,
        i.evidence,
        i.policy_ref,
        i.action,
        i.due_date,
        case when p.warning_id is null then 'new' else 'persisting' end as status,
        coalesce(p.first_seen_quarter, i.quarter) as first_seen_quarter
    from identified as i
    left join rule_catalog as r using (rule_code)
    left join households as h using (household_id)
    left join members as m on m.member_id = i.member_id
    left join heads as hd on hd.household_id = i.household_id
    left join previous as p using (warning_id)
)

select * from final
