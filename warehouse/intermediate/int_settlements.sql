-- Medical settlements delivered up to and including the quarter whose 结算日期 falls in
-- the 12 months ending Q.end; each 结算流水号 once, from its latest delivery.
with

delivered as (
    select * from staging.medical
    where quarter <= $quarter
      and settlement_date > $lookback_start
      and settlement_date <= $q_end
),

final as (
    select * exclude (copy_rank)
    from (
        select *, row_number() over (partition by settlement_id order by quarter desc, source_file, source_row) as copy_rank
        from delivered
    )
    where copy_rank = 1
)

select * from final
