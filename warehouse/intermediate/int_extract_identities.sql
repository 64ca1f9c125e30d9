-- Who each extract record says it is about: the records a quarter links, with the
-- identity fields the linker compares. Accumulating sources bring every copy delivered so
-- far (a record is linked if any copy links); full stocks bring only the quarter's.
-- `identity_key` names the identity as written (name and every form of the ID): the many
-- settlements of one patient, or one person's records in several sources, share it, and
-- the linker links each identity once (a province's medical extract holds each patient
-- several times a quarter, and the lookback window several quarters).
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

unioned as (
    select * from medical
    union all select * from death
    union all select * from disability
    union all select * from education
    union all select * from detention
),

final as (
    select
        *,
        -- MD5 (128 bits; two identities sharing a key is not a practical risk) as hex text:
        -- the key is also Splink's unique_id, and DuckDB turns a 128-bit integer into
        -- text about a hundred times slower than it computes the hash.
        md5(concat_ws(chr(31), coalesce(name, chr(0)), coalesce(id_number, chr(0)),
                             coalesce(id_number_valid::varchar, chr(0)), coalesce(id_number_partial, chr(0)),
                             coalesce(id_number_raw, chr(0)), coalesce(id_number_flag, chr(0)))) as identity_key
    from unioned
)

select * from final
