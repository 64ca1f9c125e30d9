"""N05 医疗救助未落实 — a hospital stay with no medical assistance.

焦民〔2024〕8号 二（三）2（1）: 对在定点医疗机构发生的住院费用，经居民基本医保、大病保险
支付后的政策范围内自付费用，给予特困人员90%的救助，给予最低生活保障对象……70%的救助.

A beneficiary of a 特困, 低保 or 支出型低保 household is linked to 住院 settlements dated
in the quarter with 医疗救助支付 = 0 (or empty) and 个人负担 > 0. One warning per member,
summing the settlements; the expected assistance is rate × 个人负担 (90% 特困, 70% 低保 and
支出型低保). Orange when it reaches 1,000 yuan, else yellow; due Q.end + 30 days.

Parameters: deadlines.yaml (verification_days); medical_assistance.yaml
(inpatient_assistance_rate, orange_expected_assistance_yuan).
"""

from pipelines.rules.catalog import Amount, Rule
from pipelines.rules.texts import chinese_date, yuan

SQL = """
with

beneficiaries as (
    select *, ($inpatient_assistance_rate::json ->> category)::double as rate
    from int_roster
    where is_beneficiary and ($inpatient_assistance_rate::json ->> category) is not null
),

stays as (
    select l.member_id, s.settlement_id, s.settlement_date, s.institution, s.out_of_pocket_yuan
    from int_links as l
    join int_settlements as s on s.settlement_id = l.record_key
    where l.source = 'medical' and l.for_need
      and s.visit_type = '住院'
      and s.settlement_date between $q_start and $q_end
      and coalesce(s.medical_assistance_yuan, 0) = 0
      and s.out_of_pocket_yuan > 0
),

per_member as (
    select b.household_id, b.member_id, any_value(b.category) as category, any_value(b.rate) as rate,
           sum(s.out_of_pocket_yuan) as out_of_pocket_yuan,
           list(json_object('settlement_id', s.settlement_id, 'settlement_date', s.settlement_date,
                            'institution', s.institution, 'out_of_pocket_yuan', s.out_of_pocket_yuan)
                order by s.settlement_date, s.settlement_id) as settlements,
           list('medical:' || s.settlement_id) as basis
    from beneficiaries as b
    join stays as s using (member_id)
    group by b.household_id, b.member_id
),

final as (
    select
        household_id,
        member_id,
        -- compared before rounding to the fen (999.999 is below 1,000); round(…, 4) only drops float noise
        case when round(rate * out_of_pocket_yuan, 4) >= $orange_expected_assistance_yuan then 'orange' else 'yellow' end as severity,
        ($q_end + to_days($verification_days))::date as due_date,
        json_object(
            'settlements', settlements,
            'out_of_pocket_yuan', out_of_pocket_yuan,
            'category', category,
            'assistance_rate', rate,
            'expected_assistance_yuan', round(rate * out_of_pocket_yuan, 2)
        ) as evidence,
        null::varchar as action,
        basis
    from per_member
)

select * from final
"""


def evidence_text(e: dict) -> str:
    stays = "；".join(
        f"{chinese_date(s.get('settlement_date'))}{s.get('institution') or ''}住院，个人负担{yuan(s.get('out_of_pocket_yuan'))}"
        for s in e.get("settlements") or []
    )
    rate = float(e.get("assistance_rate") or 0)
    return f"{stays}；医疗救助支付为0，按{rate:.0%}应救助约{yuan(e.get('expected_assistance_yuan'))}"


RULE = Rule(
    code="N05",
    title="医疗救助未落实",
    kind="need",
    scope="member",
    policy_ref="焦民〔2024〕8号 二（三）2（1）",
    action="核实住院费用医疗救助落实情况，推送医保部门按规定给予住院救助",
    parameters=("inpatient_assistance_rate", "orange_expected_assistance_yuan", "verification_days"),
    inputs=("int_roster", "int_links", "int_settlements"),
    sql=SQL,
    evidence=evidence_text,
    amount=Amount(
        "(evidence->>'expected_assistance_yuan')::DECIMAL(18,2)",
        "应予住院医疗救助",
        "N05 医疗救助未落实：本季度医疗救助支付为0的住院个人负担×该类对象的住院救助比例，即应救助而未救助的估算金额。",
    ),
    doc=__doc__,
)
