-- Identities a caseworker confirmed: a Q02 warning (another name on the member's ID)
-- returned 属实 — the records are the member's after all, a changed name say. For each such
-- warning, the names its conflicting records carried in the quarter of the list. From the
-- next run on, a record carrying one of those names on the member's ID links to the member
-- (link_exact_id.sql); 不属实 changes nothing here (the warning is silenced in the marts).
with

verdicts as (
    select warning_id, list_quarter from int_verifications where result = '属实'
),

confirmed_warnings as (
    select w.quarter, w.member_id
    from marts.warnings as w
    join verdicts as v on v.warning_id = w.warning_id and v.list_quarter = w.quarter
    where w.rule_code = 'Q02'
),

final as (
    select distinct c.member_id, c.name_as_written
    from linked.identity_conflicts as c
    join confirmed_warnings as w on w.quarter = c.quarter and w.member_id = c.member_id
    where c.name_as_written is not null
)

select * from final
