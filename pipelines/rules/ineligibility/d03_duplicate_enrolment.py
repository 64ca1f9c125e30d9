"""D03 重复享受 — one person is a beneficiary in two or more households.

运民发〔2023〕50号 三（二）: 防止困难群众因易地搬迁造成漏保或者重复纳入低保; 三（三）
内部科室之间每月或每季度定期比对低保、特困、孤儿等人员信息.

The same real person, however their ID is written (the roster deduplication of
`linked.roster_duplicates`: equal IDs once cleaned, or Splink on damaged ones, with the
ineligibility threshold), is a beneficiary in two or more households of the roster,
whatever the counties or categories. One warning on each of those member rows; orange;
due Q.end + 30 days.

Parameters: deadlines.yaml (verification_days).
"""

from pipelines.rules.catalog import Rule

SQL = """
with

beneficiaries as (
    select * from int_roster where is_beneficiary
),

same_person as (  -- both directions of every pair strong enough to stop a benefit
    select member_id_l as member_id, member_id_r as other_member_id, match_probability, match_method
    from linked.roster_duplicates
    where quarter = $quarter and match_probability >= $ineligibility_threshold
    union all
    select member_id_r, member_id_l, match_probability, match_method
    from linked.roster_duplicates
    where quarter = $quarter and match_probability >= $ineligibility_threshold
),

flagged as (
    select b.*, o.member_id as other_member_id, o.household_id as other_household_id, o.county_code as other_county_code,
           o.category as other_category, s.match_probability, s.match_method
    from beneficiaries as b
    join same_person as s using (member_id)
    join beneficiaries as o on o.member_id = s.other_member_id and o.household_id <> b.household_id
),

final as (
    select
        household_id,
        member_id,
        'orange' as severity,
        ($q_end + to_days($verification_days))::date as due_date,
        json_object(
            'other_enrolments', list(json_object(
                'household_id', other_household_id, 'county_code', other_county_code,
                'category', other_category, 'match_probability', round(match_probability, 4),
                'match_method', match_method) order by other_household_id),
            'category', any_value(category)
        ) as evidence,
        null::varchar as action,
        list(distinct 'member:' || other_member_id) as basis
    from flagged
    group by household_id, member_id
)

select * from final
"""


def evidence_text(e: dict) -> str:
    others = e.get("other_enrolments") or []
    where = "；".join(
        f"户编号{o.get('household_id')}（区县{o.get('county_code')}，{o.get('category')}）" for o in others
    )
    return f"同一人同时在{len(others) + 1}个家庭中作为保障对象：另见{where}"


RULE = Rule(
    code="D03",
    title="重复享受",
    kind="ineligibility",
    scope="member",
    policy_ref="运民发〔2023〕50号 三（二）、三（三）",
    action="核实该人员在两个以上家庭重复享受的情况，只保留一处保障，停止其余家庭中的重复保障并追回多发的保障金",
    parameters=("verification_days",),
    inputs=("int_roster", "linked.roster_duplicates"),
    sql=SQL,
    evidence=evidence_text,
    doc=__doc__,
)
