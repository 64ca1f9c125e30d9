"""N06 支出型临时救助 — a household whose medical costs this quarter are heavy.

阳民字〔2019〕41号 二（一）2: 支出型救助对象……因教育、医疗等生活必需支出突然增加超出家庭
承受能力……原则上其家庭人均可支配收入应低于当地上年度人均可支配收入; 二（三）: 参照城市
低保保障标准×临时救助人数×困难持续时间（以月为单位，一般不超过3个月）确定救助标准.

A household of any category but 特困, not raised under N01 this quarter, whose members'
个人负担 for settlements dated in the quarter exceeds a share (0.25 by default, a local
parameter: the document only says "较大") of 上年家庭总收入, and whose per-person income
I / n is below the county's 上年居民人均可支配收入 for its 城乡类别. Household warning;
yellow; suggested amount = the county's urban standard × n × 3 months; due Q.end + 10
days. Runs after N01 in the need family, whose findings it reads.

Parameters: deadlines.yaml (temporary_assistance_days); scope.yaml
(temporary_assistance_excluded_categories); temporary_assistance.yaml
(medical_burden_share, assistance_months).
"""

from pipelines.rules.catalog import Amount, Rule
from pipelines.rules.texts import yuan

SQL = """
with

households as (
    select distinct household_id, category, county_code, urban_rural, household_size, annual_income_yuan
    from int_roster
    where not list_contains($temporary_assistance_excluded_categories, category)
),

already_n01 as (
    select household_id from prior_findings where rule_code = 'N01' and quarter = $quarter
),

medical as (
    select r.household_id, s.settlement_id, any_value(s.out_of_pocket_yuan) as out_of_pocket_yuan
    from int_links as l
    join int_settlements as s on s.settlement_id = l.record_key
    join int_roster as r on r.member_id = l.member_id
    where l.source = 'medical' and l.for_need and s.settlement_date between $q_start and $q_end
    group by r.household_id, s.settlement_id
),

medical_by_household as (
    select household_id, sum(out_of_pocket_yuan) as out_of_pocket_yuan, count(*) as settlements,
           list('medical:' || settlement_id) as basis
    from medical group by household_id
),

assessed as (
    select h.*, m.out_of_pocket_yuan, m.settlements, m.basis,
           s.disposable_income_yuan, s.disposable_income_source,
           u.monthly_standard_yuan as urban_standard_yuan
    from households as h
    join medical_by_household as m using (household_id)
    left join int_standards as s using (county_code, urban_rural)
    left join int_standards as u on u.county_code = h.county_code and u.urban_rural = '城市'
    where h.household_id not in (select household_id from already_n01)
),

final as (
    select
        household_id,
        null::varchar as member_id,
        'yellow' as severity,
        ($q_end + to_days($temporary_assistance_days))::date as due_date,
        json_object(
            'out_of_pocket_yuan', out_of_pocket_yuan,
            'settlements', settlements,
            'annual_income_yuan', annual_income_yuan,
            'burden_share_limit', $medical_burden_share,
            'income_per_person_yuan', round(annual_income_yuan / household_size, 2),
            'disposable_income_yuan', disposable_income_yuan,
            'disposable_income_source', disposable_income_source,
            'urban_standard_yuan', urban_standard_yuan,
            'household_size', household_size,
            'months', $assistance_months,
            'suggested_amount_yuan', urban_standard_yuan * household_size * $assistance_months
        ) as evidence,
        null::varchar as action,
        basis
    from assessed
    where annual_income_yuan is not null and disposable_income_yuan is not null
      and out_of_pocket_yuan > $medical_burden_share * annual_income_yuan
      and annual_income_yuan / household_size < disposable_income_yuan
)

select * from final
"""


def evidence_text(e: dict) -> str:
    return (
        f"本季度医疗个人负担{yuan(e.get('out_of_pocket_yuan'))}，超过上年家庭总收入{yuan(e.get('annual_income_yuan'))}的"
        f"{float(e.get('burden_share_limit') or 0):.0%}；人均收入{yuan(e.get('income_per_person_yuan'))}，"
        f"低于当地上年人均可支配收入{yuan(e.get('disposable_income_yuan'))}；"
        f"建议临时救助约{yuan(e.get('suggested_amount_yuan'))}（城市低保标准{yuan(e.get('urban_standard_yuan'))}×{e.get('household_size')}人×{e.get('months')}个月）"
    )


RULE = Rule(
    code="N06",
    title="支出型临时救助",
    kind="need",
    scope="household",
    policy_ref="阳民字〔2019〕41号 二（一）2、二（三）",
    action="告知并协助申请支出型临时救助",
    parameters=(
        "temporary_assistance_excluded_categories",
        "medical_burden_share",
        "assistance_months",
        "temporary_assistance_days",
    ),
    inputs=("int_roster", "int_links", "int_settlements", "int_standards", "prior_findings"),
    sql=SQL,
    evidence=evidence_text,
    amount=Amount(
        "(evidence->>'suggested_amount_yuan')::DECIMAL(18,2)",
        "建议临时救助金额",
        "N06 支出型临时救助：按城市低保标准×家庭人口数×救助月数估算的建议临时救助金额（阳民字〔2019〕41号 二（三）），"
        "是一次性救助的数，不是每月的数。",
    ),
    doc=__doc__,
)
