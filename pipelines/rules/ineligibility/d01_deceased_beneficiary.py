"""D01 保障对象死亡 — a beneficiary of a 低保, 支出型低保 or 特困 household has died.

运民发〔2023〕50号 一（五）: “低保对象死亡后，应当自其死亡之日起3个月内对其家庭状况进行
核查，并办理完成低保金增发、减发、停发等相关手续。”

A beneficiary (是否保障对象 = 是) of such a household is linked to a death record (any
delivered so far) with 死亡日期 ≤ Q.end. One warning per member, whatever the number of
records (公安, 卫健, 殡葬 may each report the death). due_date = 死亡日期 + 3 months;
red when that date has passed by Q.end or no living beneficiary is left in the household,
else orange. The evidence estimates the benefit paid after death: monthly benefit ÷
beneficiaries × whole months from the month after death to Q.end.
A death linked on less than the ID and name agreeing outright (a repaired ID, a name one
character off) is held to orange, its action asking to verify the identity first
(pipelines/rules/records.py): a benefit is stopped only on a record certainly the member's.

Parameters: deadlines.yaml (death_reverification_months); scope.yaml
(death_check_categories).
"""

from pipelines.rules.catalog import Amount, Rule
from pipelines.rules.texts import chinese_date, yuan

SQL = """
with

beneficiaries as (
    select * from int_roster where is_beneficiary
),

death_links as (
    select l.member_id, d.record_id, d.death_date, d.info_source
    from int_links as l
    join int_death_records as d on d.record_id = l.record_key
    where l.source = 'death' and l.for_ineligibility and d.death_date <= $q_end
),

deceased as (
    select
        member_id,
        min(death_date) as death_date,
        list(distinct info_source order by info_source) as sources,
        count(distinct record_id) as records,
        list(distinct 'death:' || record_id) as basis
    from death_links
    group by member_id
),

household_beneficiaries as (
    select
        b.household_id,
        count(*) as beneficiaries,
        count(*) filter (where d.member_id is null) as living_beneficiaries
    from beneficiaries as b
    left join deceased as d using (member_id)
    group by b.household_id
),

flagged as (
    select
        b.household_id,
        b.member_id,
        b.monthly_benefit_yuan,
        d.death_date,
        d.sources,
        d.records,
        d.basis,
        h.beneficiaries,
        h.living_beneficiaries,
        (d.death_date + to_months($death_reverification_months))::date as due_date,
        (year($q_end) * 12 + month($q_end)) - (year(d.death_date) * 12 + month(d.death_date)) as months_paid_after_death
    from beneficiaries as b
    join deceased as d using (member_id)
    join household_beneficiaries as h using (household_id)
    where list_contains($death_check_categories, b.category)
),

final as (
    select
        household_id,
        member_id,
        case when due_date < $q_end or living_beneficiaries = 0 then 'red' else 'orange' end as severity,
        due_date,
        json_object(
            'death_date', death_date,
            'sources', sources,
            'death_records', records,
            'monthly_benefit_yuan', monthly_benefit_yuan,
            'beneficiaries', beneficiaries,
            'living_beneficiaries', living_beneficiaries,
            'months_paid_after_death', months_paid_after_death,
            'estimated_overpayment_yuan',
                round(coalesce(monthly_benefit_yuan, 0) / beneficiaries * months_paid_after_death, 2)
        ) as evidence,
        null::varchar as action,
        basis
    from flagged
)

select * from final
"""


def evidence_text(e: dict) -> str:
    sources = "、".join(e.get("sources") or []) or "死亡信息"
    text = f"{sources}记录：{chinese_date(e.get('death_date'))}死亡"
    months = int(e.get("months_paid_after_death") or 0)
    if months > 0:
        text += f"；死亡后已发放{months}个月，约多发放{yuan(e.get('estimated_overpayment_yuan'))}"
    else:
        text += "；尚无死亡后多发放的月份"
    if e.get("living_beneficiaries") == 0:
        text += "；该户已无在世保障对象"
    return text


RULE = Rule(
    code="D01",
    title="保障对象死亡",
    kind="ineligibility",
    scope="member",
    policy_ref="运民发〔2023〕50号 一（五）",
    action="核实死亡情况，自死亡之日起3个月内完成家庭状况核查，办理保障金增发、减发、停发手续，追回死亡后多发放的保障金",
    parameters=("death_reverification_months", "death_check_categories"),
    inputs=("int_roster", "int_links", "int_death_records"),
    sql=SQL,
    evidence=evidence_text,
    amount=Amount(
        "(evidence->>'estimated_overpayment_yuan')::DECIMAL(18,2)",
        "死亡后多发放保障金",
        "D01 保障对象死亡：死亡后多发放的保障金，按家庭月保障金÷保障对象人数×死亡次月至季度末的整月数估算，"
        "是截至季度末的累计数（持续的预警每季度都会再累加，不能把各季度相加），应核实后追回。",
    ),
    doc=__doc__,
)
