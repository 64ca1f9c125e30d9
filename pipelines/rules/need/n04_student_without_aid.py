"""N04 困难学生未获资助 — a student of a low-income family receives no aid.

焦民〔2024〕8号 二（三）2（2）: 对最低生活保障户、特困户、最低生活保障边缘家庭、刚性支出
困难家庭等符合条件的经济困难学生，按规定落实……资助政策.

A member of any roster household is linked to a student record with 学籍状态 在读 and
资助金额 empty or 0 (the quarter's student register). Member warning; yellow; refer to
the education bureau; due Q.end + 30 days.

Parameters: deadlines.yaml (verification_days).
"""

from pipelines.rules.catalog import Rule

SQL = """
with

students as (
    select l.member_id, e.student_no, e.school, e.stage, e.aid_yuan
    from int_links as l
    join staging.education as e on e.student_no = l.record_key and e.quarter = $quarter
    where l.source = 'education' and l.for_need
      and e.enrolment_status = '在读'
      and coalesce(e.aid_yuan, 0) = 0
),

final as (
    select
        m.household_id,
        m.member_id,
        'yellow' as severity,
        ($q_end + to_days($verification_days))::date as due_date,
        json_object(
            'students', list(json_object('student_no', s.student_no, 'school', s.school, 'stage', s.stage,
                                         'aid_yuan', s.aid_yuan) order by s.student_no),
            'household_category', any_value(m.category)
        ) as evidence,
        null::varchar as action,
        list(distinct 'education:' || s.student_no) as basis
    from int_roster as m
    join students as s using (member_id)
    group by m.household_id, m.member_id
)

select * from final
"""


def evidence_text(e: dict) -> str:
    parts = [f"{s.get('school') or '学校不详'}（{s.get('stage')}，学籍号{s.get('student_no')}）" for s in e.get("students") or []]
    return "在读学生未获资助：" + "；".join(parts)


RULE = Rule(
    code="N04",
    title="困难学生未获资助",
    kind="need",
    scope="member",
    policy_ref="焦民〔2024〕8号 二（三）2（2）",
    action="推送教育部门核实，按规定落实学生资助政策",
    parameters=("verification_days",),
    inputs=("int_roster", "int_links", "staging.education"),
    sql=SQL,
    evidence=evidence_text,
    doc=__doc__,
)
