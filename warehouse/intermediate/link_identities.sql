-- The identity of every roster member and every distinct identity the quarter's extract
-- records are written with (link_record_identities), in one shape,
-- for the probabilistic linker: the 18-character ID as written (valid or not), what
-- Excel left of it, the birth date and sex (the roster's, else read from the ID), and the
-- ID keys the blocking rules join on. Name keys (simplified, pinyin) are added in Python.
-- The ID keys are defined once, in pipelines/link/blocking.py (ID_KEYS), and filled in at
-- the placeholder below: run this model through pipelines/link/sql_models.py.
with

members as (
    select
        'member' as side,
        member_id as unique_id,
        household_id,
        name,
        id_number,
        id_number_valid,
        id_number_flag,
        null::varchar as id_number_partial,
        id_number_raw,
        birth_date as given_birth_date,
        sex as given_sex
    from int_roster
),

records as (
    select
        'record' as side,
        identity_key as unique_id,
        null::varchar as household_id,
        name,
        id_number,
        id_number_valid,
        id_number_flag,
        id_number_partial,
        id_number_raw,
        null::date as given_birth_date,
        null::varchar as given_sex
    from link_record_identities
),

identities as (
    select * from members
    union all
    select * from records
),

digits as (
    select
        *,
        coalesce(id_number, case when regexp_full_match(id_number_raw, '\d{17}[\dX]') then id_number_raw end) as id18,
        case when length(id_number_partial) between 7 and 15 then rpad(id_number_partial, 15, '0') end as partial15,
        case when length(id_number_partial) <= 6 then rpad(id_number_partial, 6, '0') end as partial6
    from identities
),

final as (
    select
        side,
        unique_id,
        household_id,
        name,
        id18,
        -- An ID that may be an Excel-rounded number is not trusted on its own.
        coalesce(id_number_valid, false) and id_number_flag is distinct from 'possibly_excel_rounded' as id_valid,
        partial15,
        partial6,
        case when regexp_full_match(id18, '\d{17}[\dX]')
             then (substr(id18, 1, 15)::hugeint + (substr(id18, 16, 1)::int >= 5)::int)::varchar end as rounded15,
        case when regexp_full_match(id18, '\d{17}[\dX]')
             then (substr(id18, 1, 6)::int + (substr(id18, 7, 1)::int >= 5)::int)::varchar end as rounded6,
        coalesce(given_birth_date, try_strptime(substr(id18, 7, 8), '%Y%m%d')::date) as birth_date,
        given_birth_date is null as birth_from_id,
        coalesce(
            given_sex,
            case when regexp_full_match(substr(id18, 17, 1), '\d')
                 then case when substr(id18, 17, 1)::int % 2 = 1 then '男' else '女' end end
        ) as sex,
        -- the ID keys of the blocking rules (k_no_region, k_no_year, ...: pipelines/link/blocking.py)
        {{ id_key_columns }}
    from digits
)

select * from final
