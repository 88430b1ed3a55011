-- Managers kick their webhook deliverer when deliveries are written, not on every new event: a row trigger, so a
-- statement that fans out to no webhook (none exist, or none matches) notifies nothing and costs no claim.
-- (PostgreSQL folds a transaction's identical notifications into one.)
CREATE TRIGGER webhook_deliveries_added AFTER INSERT ON webhook_deliveries
  FOR EACH ROW EXECUTE FUNCTION nqvm_notify_change();
