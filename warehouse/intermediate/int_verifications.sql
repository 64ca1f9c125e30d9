-- The latest result caseworkers returned for each warning, from every verifications/
-- delivery up to and including the quarter. A result refers to the list of the quarter
-- named in its 季度 column, else to the quarter before its delivery. When one delivery
-- returns two different results for a warning, 属实 wins over 已处理 over 不属实 (the
-- cautious reading keeps the warning alive).
with

returned as (
    select
        *,
        case
            when regexp_full_match(list_quarter, '\d{4}Q[1-4]') then list_quarter
            when substr(quarter, 6, 1) = '1' then (substr(quarter, 1, 4)::int - 1)::varchar || 'Q4'
            else substr(quarter, 1, 5) || (substr(quarter, 6, 1)::int - 1)::varchar
        end as verified_list_quarter
    from staging.verifications
    where quarter <= $quarter and result is not null
),

final as (
    select warning_id, result, note, verified_list_quarter as list_quarter, quarter as delivered_quarter,
           source_file, source_row
    from returned
    qualify row_number() over (
        partition by warning_id
        order by quarter desc, case result when '属实' then 0 when '已处理' then 1 else 2 end, source_file desc, source_row desc
    ) = 1
)

select * from final
