-- Deterministic linkage: an extract identity and a roster member whose cleaned ID numbers
-- are equal, judged by the name (pipelines/link/corroboration.py, NAME RULE; the SQL
-- function name_agreement is installed from there):
--   decision = 'link'      the name is the member's or a variant of it. An ID that could be
--                          an Excel-rounded number (it ends in 000), or that fails its check
--                          digit on both sides, is only a partial key: it links only when the
--                          names agree outright (same or normalised).
--   decision = 'conflict'  another person's name on the member's ID (rule Q02): not a link,
--                          unless a caseworker confirmed this name for this member (a Q02
--                          returned 属实, link_confirmed_identities): then a link.
--   decision is null       a partial key with a name that is only near the member's: neither.
with

identities as (
    select * from link_record_identities where id_number is not null
),

members as (
    select member_id, name, id_number, id_number_valid, id_number_flag from int_roster where id_number is not null
),

confirmed as (
    select member_id, name_as_written from link_confirmed_identities
),

pairs as (
    select
        r.identity_key,
        m.member_id,
        r.name as record_name,
        case when r.name = m.name then 'same' else name_agreement(r.name, m.name) end as name_agreement,
        coalesce(r.id_number_valid and m.id_number_valid, false) as both_valid,
        'possibly_excel_rounded' in (r.id_number_flag, m.id_number_flag) as may_be_rounded,
        r.id_number_flag as record_flag,
        m.id_number_flag as member_flag
    from identities as r
    join members as m using (id_number)
),

judged as (
    select
        p.*,
        c.member_id is not null as confirmed,
        case
            when p.record_flag = 'from_certificate' then 'from_certificate'
            when p.record_flag = 'from_student_no' then 'from_student_no'
            when 'upgraded_15' in (p.record_flag, p.member_flag) then 'upgraded_15'
            when p.both_valid and not p.may_be_rounded then 'same'
            else 'same_invalid'
        end as id_agreement
    from pairs as p
    left join confirmed as c on c.member_id = p.member_id and c.name_as_written = p.record_name
),

decided as (
    select
        *,
        case
            when name_agreement in ('same', 'normalised') then 'link'
            when name_agreement = 'variant' and id_agreement <> 'same_invalid' then 'link'
            when name_agreement = 'different' and confirmed then 'link'
            when name_agreement = 'different' and not may_be_rounded then 'conflict'
        end as decision
    from judged
),

final as (
    select
        identity_key,
        member_id,
        decision,
        1.0::double as match_probability,
        case
            when name_agreement = 'different' then 'confirmed_identity'
            when id_agreement in ('from_certificate', 'from_student_no') then 'derived_id'
            when id_agreement = 'upgraded_15' then 'repaired_id'
            when id_agreement = 'same' then 'exact_id'
            else 'exact_id_and_name'
        end as match_method,
        id_agreement,
        case when decision = 'link' and name_agreement = 'different' then 'confirmed' else name_agreement end as name_agreement,
        record_name
    from decided
    where decision is not null
)

select * from final
