-- Deterministic linkage: an extract identity and a roster member whose cleaned ID numbers
-- are equal. An ID that could be an Excel-rounded number (it ends in 000), or an ID that
-- fails its check digit on both sides, links only when the names agree as well.
with

identities as (
    select * from link_record_identities where id_number is not null
),

members as (
    select member_id, name, id_number, id_number_valid, id_number_flag from int_roster where id_number is not null
),

pairs as (
    select
        r.identity_key,
        m.member_id,
        r.name = m.name as names_agree,
        r.id_number_valid and m.id_number_valid as both_valid,
        'possibly_excel_rounded' in (r.id_number_flag, m.id_number_flag) as may_be_rounded,
        r.id_number_flag as record_flag,
        m.id_number_flag as member_flag
    from identities as r
    join members as m using (id_number)
),

accepted as (
    select *,
        case
            when record_flag in ('from_certificate', 'from_student_no') then 'derived_id'
            when 'upgraded_15' in (record_flag, member_flag) then 'repaired_id'
            when both_valid and not may_be_rounded then 'exact_id'
            else 'exact_id_and_name'
        end as match_method
    from pairs
    where (both_valid and not may_be_rounded) or coalesce(names_agree, false)
),

final as (
    select
        identity_key,
        member_id,
        1.0::double as match_probability,
        match_method
    from accepted
    qualify row_number() over (
        partition by identity_key, member_id
        order by case match_method when 'exact_id' then 0 when 'derived_id' then 1 when 'repaired_id' then 2 else 3 end
    ) = 1
)

select * from final
