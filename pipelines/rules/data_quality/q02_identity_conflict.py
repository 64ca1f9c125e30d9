"""Q02 身份信息冲突 — another person's name on a roster member's ID number.

The project's warning rules, Q02 (a data-quality finding; 运民发〔2023〕50号 三（五）
“定期开展信息比对，做到底数清、情况明，精准认定救助对象”; 焦民〔2024〕8号 二（二）1 “及时准确上传”).

An extract record in view this quarter (Q's delivery of disability, education and
detention; every death delivered so far; settlements dated in the 12 months ending Q.end)
whose cleaned ID number is a member's, but whose name is neither the member's name nor a
variant of it (pipelines/link/corroboration.py, NAME RULE). The linker does not link such a
record — no other rule reads it — and writes it to `linked.identity_conflicts`; this rule
asks the caseworker whose record it is. One warning per member, listing every such record.

Member warning; yellow; due Q.end + 30 days. A 属实 (the record is the member's, e.g. a
changed name) links the record's name to the member from the next run on
(link_confirmed_identities.sql); 不属实 silences the warning while its records are unchanged.

Parameters: deadlines.yaml (verification_days).
"""

from pipelines.rules.catalog import Rule
from pipelines.rules.texts import records_text

SQL = """
with

conflicts as (
    select * from int_identity_conflicts
),

members as (
    select member_id, household_id, name as roster_name from int_roster
),

records as (
    select
        c.member_id,
        m.household_id,
        c.source,
        c.record_key,
        {'source': c.source, 'source_title': c.source_title, 'record_key': c.record_key,
         'name_as_written': c.name_as_written, 'id_number_as_written': c.id_number_as_written,
         'roster_name': m.roster_name, 'record_date': c.record_date, 'detail': c.detail,
         'match_method': 'identity_conflict', 'match_probability': null::double,
         'id_agreement': 'same', 'name_agreement': 'different'} as record
    from conflicts as c
    join members as m using (member_id)
),

final as (
    select
        household_id,
        member_id,
        'yellow' as severity,
        ($q_end + to_days($verification_days))::date as due_date,
        json_object(
            'sources', list(distinct source order by source),
            'records', to_json(list(record order by record.record_date nulls last, source, record_key))
        ) as evidence,
        null::varchar as action,
        list(source || ':' || record_key) as basis
    from records
    group by household_id, member_id
)

select * from final
"""


def evidence_text(e: dict) -> str:
    # The records are the sentence: every one carries the member's ID under another name.
    return "部门记录使用了该成员的身份证号，但姓名不同：" + records_text(e.get("records") or [])


RULE = Rule(
    code="Q02",
    title="身份信息冲突",
    kind="data_quality",
    scope="member",
    policy_ref="运民发〔2023〕50号 三（五）；焦民〔2024〕8号 二（二）1",
    action=(
        "部门记录使用了该成员的身份证号，但姓名不同，未作为本人记录比对。请与本人及发送记录的部门核实："
        "确为本人（如曾改名）的，核查结果填“属实”，下季度起按本人记录比对；"
        "不是本人的，填“不属实”，并告知该部门更正身份证号"
    ),
    parameters=("verification_days",),
    inputs=("int_roster", "int_identity_conflicts"),
    sql=SQL,
    evidence=evidence_text,
    evidence_shows_records=True,
    doc=__doc__,
)
