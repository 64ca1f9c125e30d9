-- marts.verification_results for one quarter: the results caseworkers returned with this
-- quarter's delivery (verifications/), one row per warning (its latest result), with the
-- rule and place of the warning it answers. A result whose 预警编号 matches no warning of
-- the list it claims to answer is kept too (matched = false) so it can be chased, not lost.
with

verdicts as (
    select * from int_verifications where delivered_quarter = $quarter
),

listed as (
    select quarter, warning_id, rule_code, rule_title, county_code, township, household_id, member_id
    from marts.warnings
),

final as (
    select
        $quarter as quarter,
        v.warning_id,
        v.list_quarter,
        l.rule_code,
        l.rule_title,
        l.county_code,
        l.township,
        l.household_id,
        l.member_id,
        v.result,
        v.note,
        v.source_file,
        v.source_row,
        l.warning_id is not null as matched
    from verdicts as v
    left join listed as l on l.warning_id = v.warning_id and l.quarter = v.list_quarter
)

select * from final
