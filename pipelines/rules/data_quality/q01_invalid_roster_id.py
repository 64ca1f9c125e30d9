"""Q01 身份证号异常 — a roster member's ID number cannot be right as it stands.

The project's warning rules, Q01. The ID number and its check digit are defined by
GB 11643《公民身份号码》; a data-quality finding (comparisons with other departments depend
on the roster's ID numbers, 焦民〔2024〕8号 二（二）1 “确保数据准确”).

A roster member whose ID number, once cleaned (spaces, full width, lower-case x, 15 → 18
digits), fails the GB 11643 check digit, or is empty, or is not 15 or 18 characters long
(an Excel-rounded number included), or whose embedded birth date disagrees with 出生日期,
or whose sex digit disagrees with 性别. Member warning; yellow; due Q.end + 30 days.

Parameters: deadlines.yaml (verification_days).
"""

from pipelines.rules.catalog import Rule

SQL = """
with

members as (
    select
        *,
        try_strptime(substr(id_number, 7, 8), '%Y%m%d')::date as id_birth_date,
        case when regexp_full_match(substr(id_number, 17, 1), '\\d')
             then case when substr(id_number, 17, 1)::int % 2 = 1 then '男' else '女' end end as id_sex
    from int_roster
),

problems as (
    select
        *,
        list_filter([
            case when id_number_flag = 'missing' then '身份证号为空' end,
            case when id_number_flag in ('invalid_format', 'excel_rounded') then '身份证号不是15位或18位' end,
            case when id_number_flag = 'bad_checksum' then '身份证号校验位错误' end,
            case when id_number_flag = 'bad_birth_date' then '身份证号中的出生日期不是有效日期' end,
            case when id_birth_date is not null and birth_date is not null and id_birth_date <> birth_date
                 then '身份证号中的出生日期与出生日期栏不一致' end,
            case when id_sex is not null and sex is not null and id_sex <> sex
                 then '身份证号中的性别与性别栏不一致' end
        ], x -> x is not null) as issues
    from members
),

final as (
    select
        household_id,
        member_id,
        'yellow' as severity,
        ($q_end + to_days($verification_days))::date as due_date,
        json_object(
            'issues', issues,
            'id_number_as_written', id_number_raw,
            'birth_date', birth_date,
            'sex', sex
        ) as evidence,
        null::varchar as action,
        ['id:' || coalesce(id_number_raw, ''), 'birth:' || coalesce(birth_date::varchar, ''), 'sex:' || coalesce(sex, '')] as basis
    from problems
    where len(issues) > 0
)

select * from final
"""


def evidence_text(e: dict) -> str:
    written = e.get("id_number_as_written")
    shown = f"（花名册中为“{written}”）" if written else ""
    return "；".join(e.get("issues") or []) + shown


RULE = Rule(
    code="Q01",
    title="身份证号异常",
    kind="data_quality",
    scope="member",
    policy_ref="GB 11643《公民身份号码》；焦民〔2024〕8号 二（二）1（数据质量）",
    action="核对户口簿、身份证原件，更正花名册中的身份证号、出生日期或性别",
    parameters=("verification_days",),
    inputs=("int_roster",),
    sql=SQL,
    evidence=evidence_text,
    doc=__doc__,
)
