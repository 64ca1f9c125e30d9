"""D04 支出型低保到期 — an expenditure-type approval has run its year.

晋市民〔2023〕2号 二（二）4: “支出型贫困家庭救助实行动态管理，有效期为一年，一年后自动
终止。如家庭依然困难，经调查复核后，符合条件可继续享受最低生活保障待遇。”

A 支出型低保 household whose validity end (有效期至, else 认定日期 + 1 year, the same
calendar day a year later, 29 February giving 28 February) is on or before Q.end:
orange, terminate or re-verify. A validity end in the next quarter: yellow, prepare the
review. Household warning; due on the validity end.

Parameters: expenditure_poverty.yaml (approval_validity_years).
"""

from pipelines.rules.catalog import Rule
from pipelines.rules.texts import chinese_date

SQL = """
with

expenditure_households as (
    select distinct household_id, approval_date, validity_end
    from int_roster
    where category = '支出型低保'
),

validity as (
    select
        *,
        coalesce(validity_end, (approval_date + to_years($approval_validity_years))::date) as ends,
        validity_end is null as computed
    from expenditure_households
),

final as (
    select
        household_id,
        null::varchar as member_id,
        case when ends <= $q_end then 'orange' else 'yellow' end as severity,
        ends as due_date,
        json_object(
            'approval_date', approval_date,
            'validity_end', ends,
            'validity_end_computed', computed,
            'expired', ends <= $q_end
        ) as evidence,
        case when ends <= $q_end then $action_expired else $action_due_next_quarter end as action,
        ['validity_end:' || ends::varchar] as basis
    from validity
    where ends <= $next_q_end
)

select * from final
"""


def evidence_text(e: dict) -> str:
    ends = chinese_date(e.get("validity_end"))
    how = "（认定日期加一年）" if e.get("validity_end_computed") else ""
    if e.get("expired"):
        return f"支出型低保{chinese_date(e.get('approval_date'))}认定，有效期至{ends}{how}，已到期"
    return f"支出型低保{chinese_date(e.get('approval_date'))}认定，有效期至{ends}{how}，将于下季度到期"


RULE = Rule(
    code="D04",
    title="支出型低保到期",
    kind="ineligibility",
    scope="household",
    policy_ref="晋市民〔2023〕2号 二（二）4",
    action="支出型低保到期：调查复核，符合条件的继续保障，不符合的终止救助",
    actions={
        "expired": "支出型低保有效期已满：入户调查复核，仍符合条件的重新审核确认，不再符合的终止救助",
        "due_next_quarter": "支出型低保将于下季度到期：提前告知家庭，准备调查复核",
    },
    parameters=("approval_validity_years",),
    inputs=("int_roster",),
    sql=SQL,
    evidence=evidence_text,
    doc=__doc__,
)
