"""D02 保障对象在押服刑 — a beneficiary is held in custody or serving a sentence.

运民发〔2023〕50号 三（三）: 推动……死亡人员、服刑（在押）人员……等信息比对, 三（五）
“对于发现条件不符合的，要决定停止低保”.

A beneficiary (是否保障对象 = 是) of any household is linked to a detention record of a
type that counts (看守所羁押, 监狱服刑, 强制隔离戒毒 — never 社区矫正) with 入所日期 ≤
Q.end and 出所日期 empty or after Q.end. Detention is a full stock: only the quarter's
delivery counts. Member warning; orange; due Q.end + 30 days.
A detention linked on less than the ID and name agreeing outright asks, in its action, to
verify the identity first (pipelines/rules/records.py).

Parameters: deadlines.yaml (verification_days); scope.yaml (detention_types_counted).
"""

from pipelines.rules.catalog import Rule
from pipelines.rules.texts import chinese_date

SQL = """
with

beneficiaries as (
    select * from int_roster where is_beneficiary
),

held as (
    select l.member_id, d.record_id, d.detention_type, d.admission_date, d.release_date, d.facility
    from int_links as l
    join staging.detention as d on d.record_id = l.record_key and d.quarter = $quarter
    where l.source = 'detention' and l.for_ineligibility
      and list_contains($detention_types_counted, d.detention_type)
      and d.admission_date <= $q_end
      and (d.release_date is null or d.release_date > $q_end)
),

final as (
    select
        b.household_id,
        b.member_id,
        'orange' as severity,
        ($q_end + to_days($verification_days))::date as due_date,
        json_object(
            'detentions', list(json_object(
                'type', h.detention_type, 'admission_date', h.admission_date,
                'release_date', h.release_date, 'facility', h.facility) order by h.admission_date),
            'category', any_value(b.category)
        ) as evidence,
        null::varchar as action,
        list(distinct 'detention:' || h.record_id) as basis
    from beneficiaries as b
    join held as h using (member_id)
    group by b.household_id, b.member_id
)

select * from final
"""


def evidence_text(e: dict) -> str:
    parts = []
    for d in e.get("detentions") or []:
        until = f"，预计{chinese_date(d.get('release_date'))}出所" if d.get("release_date") else "，尚未出所"
        place = f"（{d.get('facility')}）" if d.get("facility") else ""
        parts.append(f"{d.get('type')}{place}：{chinese_date(d.get('admission_date'))}入所{until}")
    return "羁押服刑记录：" + "；".join(parts)


RULE = Rule(
    code="D02",
    title="保障对象在押服刑",
    kind="ineligibility",
    scope="member",
    policy_ref="运民发〔2023〕50号 三（三）",
    action="核实羁押服刑情况；在押服刑期间按规定停发其保障金，重新核定家庭保障人口和保障金额",
    parameters=("detention_types_counted", "verification_days"),
    inputs=("int_roster", "int_links", "staging.detention"),
    sql=SQL,
    evidence=evidence_text,
    doc=__doc__,
)
