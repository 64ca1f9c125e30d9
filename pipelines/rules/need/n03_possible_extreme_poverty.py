"""N03 可能符合特困条件 — a person living alone on 低保 may qualify for 特困 support.

晋民发〔2022〕38号 一、1: 将符合条件的残疾等级为一、二、三级的智力、精神残疾人，残疾等级
为一、二级的肢体残疾人，残疾等级为一级的视力残疾人纳入特困人员救助供养范围.

A single-person (家庭人口数 = 1) 低保 household whose member holds a 有效 certificate of
智力 or 精神 grade 一 to 三, 肢体 grade 一 or 二, or 视力 grade 一 (the dated parameter
`extreme_poverty_certificates`). Member warning; yellow; due Q.end + 30 days.

Parameters: deadlines.yaml (verification_days); disability.yaml
(extreme_poverty_certificates).
"""

from pipelines.rules.catalog import Rule
from pipelines.rules.texts import certificates_text

SQL = """
with

living_alone as (
    select * from int_roster where category = '低保' and household_size = 1
),

certificates as (
    select l.member_id, c.certificate_no, c.category, c.grade, c.status
    from int_links as l
    join staging.disability as c on c.certificate_no = l.record_key and c.quarter = $quarter
    where l.source = 'disability' and l.for_need
      and c.status = '有效'
      and list_contains($extreme_poverty_certificates, c.category || '|' || c.grade)
),

final as (
    select
        m.household_id,
        m.member_id,
        'yellow' as severity,
        ($q_end + to_days($verification_days))::date as due_date,
        json_object('certificates', list(json_object(
            'certificate_no', c.certificate_no, 'category', c.category, 'grade', c.grade, 'status', c.status)
            order by c.certificate_no)) as evidence,
        null::varchar as action,
        list(distinct 'disability:' || c.certificate_no) as basis
    from living_alone as m
    join certificates as c using (member_id)
    group by m.household_id, m.member_id
)

select * from final
"""


def evidence_text(e: dict) -> str:
    return f"单人户低保对象持有残疾人证：{certificates_text(e)}，可能符合特困人员认定条件"


RULE = Rule(
    code="N03",
    title="可能符合特困条件",
    kind="need",
    scope="member",
    policy_ref="晋民发〔2022〕38号 一、1",
    action="核实是否符合特困人员认定条件，符合条件的纳入特困人员救助供养",
    parameters=("extreme_poverty_certificates", "verification_days"),
    inputs=("int_roster", "int_links", "staging.disability"),
    sql=SQL,
    evidence=evidence_text,
    doc=__doc__,
)
