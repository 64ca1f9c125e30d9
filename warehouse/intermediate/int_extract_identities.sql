-- Who each extract record says it is about: the records a quarter links, with the
-- identity fields the linker compares. Accumulating sources bring every copy delivered so
-- far (a record is linked if any copy links); full stocks bring only the quarter's.
with

medical as (
    select 'medical' as source, settlement_id as record_key, name, id_number, id_number_valid,
           id_number_partial, id_number_raw, id_number_flag, quarter as delivered_quarter
    from staging.medical
    where quarter <= $quarter and settlement_date > $lookback_start and settlement_date <= $q_end
),

death as (
    select 'death', record_id, name, id_number, id_number_valid, id_number_partial, id_number_raw, id_number_flag, quarter
    from staging.death
    where quarter <= $quarter
),

disability as (
    select 'disability', certificate_no, name, id_number, id_number_valid, id_number_partial, id_number_raw, id_number_flag, quarter
    from staging.disability
    where quarter = $quarter
),

education as (
    select 'education', student_no, name, id_number, id_number_valid, id_number_partial, id_number_raw, id_number_flag, quarter
    from staging.education
    where quarter = $quarter
),

detention as (
    select 'detention', record_id, name, id_number, id_number_valid, id_number_partial, id_number_raw, id_number_flag, quarter
    from staging.detention
    where quarter = $quarter
),

final as (
    select * from medical
    union all select * from death
    union all select * from disability
    union all select * from education
    union all select * from detention
)

select * from final
