-- wrk script: code-only postbacks with a new order id each time (one wrk thread).
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/pb?code=JANE20&order_id=L" .. counter .. "&amount=10.00&token=acme-postback-secret-0001")
end
