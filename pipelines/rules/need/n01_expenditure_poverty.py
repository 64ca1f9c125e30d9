"""N01 支出型贫困 — a household whose rigid expenditure pushes it below the standard.

晋市民〔2023〕2号 二（一）1–4: 提出申请前12个月的家庭收入，扣除同期发生的医疗费用（个人
负担）、教育费用（获得资助后个人负担的学费、住宿费、保育教育费）等刚性支出后，家庭人均
收入低于当地最低生活保障标准；家庭人均金融资产不超过当地36个月最低生活保障标准之和;
二（三）: 刚性支出超过家庭总收入的全额救助，否则按差额补差救助.

For a household of a candidate category (低保边缘, 刚性支出困难, 防返贫监测):
  R = 个人负担 of every settlement of its members dated in the 12 months ending Q.end
      (each settlement once, whichever quarter delivered it)
    + for each member studying full time in 学前 … 本科 at a school that is not high-fee,
      学籍状态 在读: 学年学费 + 学年住宿费 + 学年保育教育费 − 资助金额 (not below 0);
  I = 上年家庭总收入, n = 家庭人口数 (as declared), S = the monthly standard in force on
  Q.end for the county and 城乡类别, A = 家庭金融资产.
Raised when (I − R) / n / 12 < S and A / n ≤ 36 × S (compared as (I − R) < 12·n·S and
A ≤ 36·n·S, exactly, in yuan and fen). Red when R ≥ I (full relief), else orange (top-up,
with the monthly gap per person). Household warning; due Q.end + 30 days.

Parameters: deadlines.yaml (verification_days); expenditure_poverty.yaml
(candidate_categories, education_stages, financial_asset_limit_months,
rigid_expenditure_lookback_months).
"""

from pipelines.rules.catalog import Amount, Rule
from pipelines.rules.texts import yuan

SQL = """
with

candidates as (
    select distinct household_id, category, county_code, urban_rural, household_size,
           annual_income_yuan, financial_assets_yuan
    from int_roster
    where list_contains($candidate_categories, category)
),

members as (
    select member_id, household_id from int_roster where list_contains($candidate_categories, category)
),

medical as (  -- each settlement once per household
    select m.household_id, s.settlement_id, any_value(s.out_of_pocket_yuan) as out_of_pocket_yuan
    from int_links as l
    join int_settlements as s on s.settlement_id = l.record_key
    join members as m on m.member_id = l.member_id
    where l.source = 'medical' and l.for_need
    group by m.household_id, s.settlement_id
),

medical_by_household as (
    select household_id, sum(out_of_pocket_yuan) as medical_yuan, count(*) as settlements,
           list('medical:' || settlement_id) as medical_basis
    from medical group by household_id
),

studies as (
    select m.household_id, e.student_no,
           any_value(greatest(coalesce(e.tuition_yuan, 0) + coalesce(e.boarding_yuan, 0)
                              + coalesce(e.childcare_yuan, 0) - coalesce(e.aid_yuan, 0), 0)) as cost
    from int_links as l
    join staging.education as e on e.student_no = l.record_key and e.quarter = $quarter
    join members as m on m.member_id = l.member_id
    where l.source = 'education' and l.for_need
      and e.enrolment_status = '在读' and e.study_mode = '全日制'
      and list_contains($education_stages, e.stage)
      and e.high_fee is distinct from true
    group by m.household_id, e.student_no
),

education_by_household as (
    select household_id, sum(cost) as education_yuan, count(*) as students,
           list('education:' || student_no) as education_basis
    from studies group by household_id
),

history as (  -- how many months of settlements the warehouse holds for the 12-month window:
              -- the quarters whose medical delivery was accepted (an empty one counts)
    select count(distinct quarter) * 3 as months
    from audit.ingest_log
    where source = 'medical' and outcome in ('loaded', 'loaded_with_quarantine', 'empty')
      and quarter <= $quarter and quarter > $quarter_a_year_before
),

assessed as (
    select
        c.*,
        coalesce(md.medical_yuan, 0) as medical_yuan,
        coalesce(ed.education_yuan, 0) as education_yuan,
        coalesce(md.medical_yuan, 0) + coalesce(ed.education_yuan, 0) as rigid_expenditure_yuan,
        list_concat(coalesce(md.medical_basis, []), coalesce(ed.education_basis, [])) as basis,
        s.monthly_standard_yuan, s.standard_source, s.standard_effective_date
    from candidates as c
    left join medical_by_household as md using (household_id)
    left join education_by_household as ed using (household_id)
    left join int_standards as s using (county_code, urban_rural)
),

final as (
    select
        household_id,
        null::varchar as member_id,
        case when rigid_expenditure_yuan >= annual_income_yuan then 'red' else 'orange' end as severity,
        ($q_end + to_days($verification_days))::date as due_date,
        json_object(
            'rigid_expenditure_yuan', rigid_expenditure_yuan,
            'medical_yuan', medical_yuan,
            'education_yuan', education_yuan,
            'annual_income_yuan', annual_income_yuan,
            'household_size', household_size,
            'monthly_standard_yuan', monthly_standard_yuan,
            'standard_source', standard_source,
            'standard_effective_date', standard_effective_date,
            'financial_assets_yuan', financial_assets_yuan,
            'asset_limit_yuan', $financial_asset_limit_months * household_size * monthly_standard_yuan,
            'monthly_income_per_person_after_expenditure',
                round((annual_income_yuan - rigid_expenditure_yuan) / household_size / 12, 2),
            'monthly_gap_per_person',
                round(monthly_standard_yuan - (annual_income_yuan - rigid_expenditure_yuan) / household_size / 12, 2),
            'relief', case when rigid_expenditure_yuan >= annual_income_yuan then '全额救助' else '补差救助' end,
            'medical_history_months', least((select months from history), $rigid_expenditure_lookback_months)
        ) as evidence,
        case when rigid_expenditure_yuan >= annual_income_yuan then $action_full_relief else $action_top_up end as action,
        basis
    from assessed
    where annual_income_yuan is not null and financial_assets_yuan is not null and monthly_standard_yuan is not null
      and annual_income_yuan - rigid_expenditure_yuan < 12 * household_size * monthly_standard_yuan
      and financial_assets_yuan <= $financial_asset_limit_months * household_size * monthly_standard_yuan
)

select * from final
"""


def evidence_text(e: dict) -> str:
    parts = []
    if float(e.get("medical_yuan") or 0):
        parts.append(f"医疗个人负担{yuan(e.get('medical_yuan'))}")
    if float(e.get("education_yuan") or 0):
        parts.append(f"教育费用{yuan(e.get('education_yuan'))}")
    detail = "（" + "、".join(parts) + "）" if parts else ""
    months = e.get("medical_history_months")
    history = f"（系统中有近{months}个月的医保结算数据）" if months is not None and int(months) < 12 else ""
    text = (
        f"近12个月刚性支出{yuan(e.get('rigid_expenditure_yuan'))}{detail}{history}，"
        f"上年家庭总收入{yuan(e.get('annual_income_yuan'))}，{e.get('household_size')}人；"
        f"扣除后月人均{yuan(e.get('monthly_income_per_person_after_expenditure'))}，"
        f"低于低保标准{yuan(e.get('monthly_standard_yuan'))}"
    )
    if e.get("relief") == "全额救助":
        return text + "；刚性支出超过家庭总收入，可全额救助"
    return text + (
        f"，每人每月差额{yuan(e.get('monthly_gap_per_person'))}；"
        f"家庭金融资产{yuan(e.get('financial_assets_yuan'))}，未超过上限{yuan(e.get('asset_limit_yuan'))}"
    )


RULE = Rule(
    code="N01",
    title="支出型贫困",
    kind="need",
    scope="household",
    policy_ref="晋市民〔2023〕2号 二（一）1–4、二（三）",
    action="告知并协助申请支出型贫困家庭救助",
    actions={
        "full_relief": "家庭刚性支出超过家庭总收入：告知并协助申请支出型贫困家庭救助（全额救助）",
        "top_up": "扣除刚性支出后人均收入低于低保标准：告知并协助申请支出型贫困家庭救助（补差救助）",
    },
    parameters=(
        "candidate_categories",
        "education_stages",
        "financial_asset_limit_months",
        "rigid_expenditure_lookback_months",
        "verification_days",
    ),
    inputs=("int_roster", "int_links", "int_settlements", "int_standards", "staging.education", "audit.ingest_log"),
    sql=SQL,
    evidence=evidence_text,
    # The top-up a household would get each month: the gap per person times its size (for
    # full relief, the whole standard per person: 晋市民〔2023〕2号 二（三）).
    amount=Amount(
        "least((evidence->>'monthly_gap_per_person')::DECIMAL(18,2), (evidence->>'monthly_standard_yuan')::DECIMAL(18,2))"
        " * (evidence->>'household_size')::INTEGER",
        "支出型贫困每月救助差额",
        "N01 支出型贫困：按（低保标准－扣除刚性支出后的月人均收入）×家庭人口数估算的每月补差救助金额；"
        "刚性支出超过家庭总收入、可全额救助的家庭按低保标准×家庭人口数计。是每月的数，不是累计数。",
    ),
    doc=__doc__,
)
