-- Links judged by caseworkers: the records each verified warning rests on, labelled match
-- (属实, 已处理) or non_match (不属实), for the verdicts delivered with this quarter. A Q02
-- (another name on the member's ID) asks exactly that question: 属实 says the record is the
-- member's, 不属实 that it is not; its 已处理 says nothing about whose record it is.
with

verdicts as (
    select * from int_verifications where delivered_quarter = $quarter
),

judged as (
    select v.*, w.member_id, w.rule_code, w.household_id
    from verdicts as v
    join marts.warnings as w on w.warning_id = v.warning_id and w.quarter = v.list_quarter
),

basis as (
    select j.*, unnest(f.basis) as item
    from judged as j
    join rules.findings as f
      on f.quarter = j.list_quarter and f.rule_code = j.rule_code and f.household_id = j.household_id
     and f.member_id is not distinct from j.member_id
),

final as (
    select
        $quarter as delivered_quarter,
        split_part(item, ':', 1) as source,
        substr(item, length(split_part(item, ':', 1)) + 2) as record_key,
        member_id,
        case when result = '不属实' then 'non_match' else 'match' end as label,
        warning_id,
        rule_code,
        list_quarter
    from basis
    where member_id is not null
      and not (rule_code = 'Q02' and result = '已处理')
      and list_contains($linked_sources, split_part(item, ':', 1))  -- the sources the linker links (sources.registry.linked_sources)
)

select * from final
