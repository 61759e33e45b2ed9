-- Typed card data (number, expiry, CVV) is the one secret a wallet sends that can be guessed: 1,000 CVVs. Wrong
-- attempts on a card are counted, and after MAX_CARD_DATA_FAILURES the card refuses typed data for a while (it can
-- still be added by reference, with no card data).
alter table cards add column card_data_failures integer not null default 0;
alter table cards add column card_data_locked_until timestamptz;
