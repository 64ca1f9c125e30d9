"""N02 重度残疾人单独纳入低保 — a severely disabled member of a marginal family.

晋民发〔2022〕38号 一、1: “将最低生活保障边缘家庭中持有中华人民共和国残疾人证的一级、
二级重度残疾人和三级智力残疾人、三级精神残疾人纳入单独申请最低生活保障范围”;
运民发〔2023〕50号 一（二）（四）: 低保边缘家庭中的重度残疾人……经本人申请，可参照“单人户”
纳入低保范围.

A member (beneficiary or not) of a 低保边缘 household is linked to a 有效 certificate of
grade 一级 or 二级 of any category, or 三级 of category 智力 or 精神 (the full list is the
dated parameter `individual_enrolment_certificates`). Disability is a full stock: only
the quarter's delivery counts. Member warning; orange; due Q.end + 30 days.

Parameters: deadlines.yaml (verification_days); disability.yaml
(individual_enrolment_certificates).
"""

from pipelines.rules.catalog import Rule
from pipelines.rules.texts import certificates_text

SQL = """
with

marginal_members as (
    select * from int_roster where category = '低保边缘'
),

certificates as (
    select l.member_id, c.certificate_no, c.category, c.grade, c.status, c.issue_date
    from int_links as l
    join staging.disability as c on c.certificate_no = l.record_key and c.quarter = $quarter
    where l.source = 'disability' and l.for_need
),

qualifying as (
    select *
    from certificates
    where status = '有效'
      and list_contains($individual_enrolment_certificates, category || '|' || grade)
),

final as (
    select
        m.household_id,
        m.member_id,
        'orange' as severity,
        ($q_end + to_days($verification_days))::date as due_date,
        json_object(
            'certificates', list(json_object(
                'certificate_no', q.certificate_no, 'category', q.category, 'grade', q.grade,
                'status', q.status, 'issue_date', q.issue_date) order by q.certificate_no),
            'household_category', any_value(m.category)
        ) as evidence,
        null::varchar as action,
        list(distinct 'disability:' || q.certificate_no) as basis
    from marginal_members as m
    join qualifying as q using (member_id)
    group by m.household_id, m.member_id
)

select * from final
"""


def evidence_text(e: dict) -> str:
    return f"低保边缘家庭成员持有残疾人证：{certificates_text(e)}，可单独申请低保"


RULE = Rule(
    code="N02",
    title="重度残疾人单独纳入低保",
    kind="need",
    scope="member",
    policy_ref="晋民发〔2022〕38号 一、1；运民发〔2023〕50号 一（二）（四）",
    action="告知本人可参照“单人户”单独申请最低生活保障，协助提出申请并开展审核确认",
    parameters=("individual_enrolment_certificates", "verification_days"),
    inputs=("int_roster", "int_links", "staging.disability"),
    sql=SQL,
    evidence=evidence_text,
    doc=__doc__,
)
