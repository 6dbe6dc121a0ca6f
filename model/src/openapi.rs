//! OpenAPI schemas of the types that are strings on the wire through serde impls of their own
//! (ids, currencies, timestamps, spans), for the `openapi` feature. The derive cannot see
//! what those impls write, so each is declared here once: a string with its description,
//! an example, and the shape the type guarantees. Every other type the program API documents
//! derives `utoipa::ToSchema` beside its definition, so its schema follows its serde
//! attributes.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

use crate::ids::{
    AdvertiserId, DerivedId, EventId, LinkCode, MemberId, OfferId, OrderId, OrderKey, PayoutOptionId, PromoCode, Sku,
    VisitorId,
};
use crate::money::Currency;
use crate::time::{Span, Timestamp};

/// `[A-Za-z0-9._-]`: the alphabet of the slug ids (see `ids::is_slug_byte`).
const SLUG: &str = "^[A-Za-z0-9._-]+$";

/// `PartialSchema` and `ToSchema` (named after the type) for types written as one string.
macro_rules! string_schema {
    ($(
        $name:ty {
            description: $description:expr,
            example: $example:expr
            $(, format: $format:expr)?
            $(, min_length: $min_length:expr)?
            $(, max_length: $max_length:expr)?
            $(, pattern: $pattern:expr)?
            $(,)?
        }
    )*) => {$(
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let schema = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .examples([$example]);
                $(let schema = schema.format(Some($format));)?
                $(let schema = schema.min_length(Some($min_length));)?
                $(let schema = schema.max_length(Some($max_length));)?
                $(let schema = schema.pattern(Some($pattern));)?
                schema.into()
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

string_schema! {
    OfferId {
        description: "An offer, chosen by the program manager.",
        example: "summer-sale",
        min_length: 1,
        max_length: OfferId::MAX_LEN,
        pattern: SLUG,
    }
    MemberId {
        description: "A member (affiliate, influencer, publisher).",
        example: "jane",
        min_length: 1,
        max_length: MemberId::MAX_LEN,
        pattern: SLUG,
    }
    AdvertiserId {
        description: "An advertiser: the party that sends postbacks and owns order ids.",
        example: "acme",
        min_length: 1,
        max_length: AdvertiserId::MAX_LEN,
        pattern: SLUG,
    }
    PayoutOptionId {
        description: "One payout option of an offer.",
        example: "default",
        min_length: 1,
        max_length: PayoutOptionId::MAX_LEN,
        pattern: SLUG,
    }
    LinkCode {
        description: "The code in a tracking link `/c/{code}`.",
        example: "jane-summer-sale",
        min_length: 1,
        max_length: LinkCode::MAX_LEN,
        pattern: SLUG,
    }
    VisitorId {
        description: "The anonymous visitor behind the `clk_v` cookie.",
        example: "01JD8X3Q4V5W6Y7Z8A9B0C1D2E",
        min_length: 1,
        max_length: VisitorId::MAX_LEN,
        pattern: SLUG,
    }
    PromoCode {
        description: "A promo code as shoppers type it: `[A-Z0-9_-]`, case-insensitive (`jane20` is `JANE20`), \
            written upper-case.",
        example: "JANE20",
        min_length: 1,
        max_length: PromoCode::MAX_LEN,
    }
    OrderId {
        description: "The advertiser's order id, as sent on the pixel or postback: visible ASCII.",
        example: "A-1001",
        min_length: 1,
        max_length: OrderId::MAX_LEN,
    }
    Sku {
        description: "A product code: visible ASCII except `:` and `,`.",
        example: "SKU-1",
        min_length: 1,
        max_length: Sku::MAX_LEN,
    }
    OrderKey {
        description: "An order, unique per advertiser: `{advertiser}:{order_id}`, or \
            `{advertiser}:event:{event_id}` for a conversion without an order id.",
        example: "acme:A-1001",
    }
    EventId {
        description: "An event id: a ULID (26 characters of Crockford base32), so ids sort by creation time.",
        example: "01JD8X3Q4V5W6Y7Z8A9B0C1D2E",
        min_length: crate::ids::EVENT_ID_LEN,
        max_length: crate::ids::EVENT_ID_LEN,
        pattern: "^[0-9A-HJKMNP-TV-Z]{26}$",
    }
    DerivedId {
        description: "A deterministic id derived from what produced the row: 32 lower-case hex digits.",
        example: "5f1c0e7a9b2d4c6e8f0a1b3c5d7e9f20",
        pattern: "^[0-9a-f]{32}$",
    }
    Currency {
        description: "An ISO 4217 currency code.",
        example: "USD",
        pattern: "^[A-Z]{3}$",
    }
    Timestamp {
        description: "A timestamp: RFC 3339 UTC with milliseconds (`2026-11-21T10:00:00.250Z`).",
        example: "2026-11-21T10:00:00.000Z",
        format: SchemaFormat::KnownFormat(KnownFormat::DateTime),
    }
    Span {
        description: "A length of time: a number and a unit, `30d`, `24h`, `15m` or `90s`.",
        example: "30d",
        pattern: "^[0-9]+[smhd]$",
    }
}

#[cfg(test)]
mod tests {
    use utoipa::{PartialSchema, ToSchema};

    use super::*;

    /// Each schema is a string named after its type, and its example is a value the type
    /// reads and writes back unchanged.
    #[test]
    fn the_examples_are_values_the_types_read_and_write() {
        fn check<T: ToSchema + serde::Serialize + serde::de::DeserializeOwned>(name: &str) {
            let schema = serde_json::to_value(T::schema()).unwrap();
            assert_eq!(T::name(), name);
            assert_eq!(schema["type"], "string", "{name}");
            let example = &schema["examples"][0];
            let value: T = serde_json::from_value(example.clone()).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(&serde_json::to_value(&value).unwrap(), example, "{name}: the example is not as written");
        }
        check::<OfferId>("OfferId");
        check::<MemberId>("MemberId");
        check::<AdvertiserId>("AdvertiserId");
        check::<PayoutOptionId>("PayoutOptionId");
        check::<LinkCode>("LinkCode");
        check::<VisitorId>("VisitorId");
        check::<PromoCode>("PromoCode");
        check::<OrderId>("OrderId");
        check::<Sku>("Sku");
        check::<OrderKey>("OrderKey");
        check::<EventId>("EventId");
        check::<DerivedId>("DerivedId");
        check::<Currency>("Currency");
        check::<Timestamp>("Timestamp");
        check::<Span>("Span");
        assert_eq!(serde_json::to_value(Timestamp::schema()).unwrap()["format"], "date-time");
    }
}
