//! The request shapes of every action: member types and constraints, in the order Kinesis
//! checks them.
//!
//! The order of members and of each member's rules decides the order of the messages in a
//! multi-error `ValidationException`; it follows the responses kinesalite's test suite recorded
//! from Kinesis. Members Kinesis added later (`StreamARN`, `ShardFilter`, `StreamModeDetails`,
//! the enhanced fan-out actions) follow, with constraints from the service model botocore
//! ships. `StreamName` is required unless `StreamARN` is given.
//!
//! Two bounds follow the embedded log rather than today's Kinesis: a record's data is at most
//! 1 MiB (the log's record limit), and retention is capped at 8,760 hours by a custom check.

/// A member's type, as the service's JSON/CBOR deserializer sees it.
#[derive(Debug)]
pub enum Type {
    /// Text.
    Str,
    /// A 32-bit integer (floats are floored, larger values clamped).
    Int,
    /// `true` / `false`.
    Bool,
    /// Bytes: base64 text in JSON, a byte string in CBOR.
    Blob,
    /// Epoch seconds in JSON, tag 1 milliseconds in CBOR.
    Timestamp,
    /// A list of the member's type.
    List(&'static Member),
    /// A string-keyed map of the member's type.
    Map(&'static Member),
    /// A structure with these members.
    Struct(&'static [Member]),
}

/// A constraint, with the wording of its message.
#[derive(Debug)]
pub enum Rule {
    /// `Member must not be null`.
    NotNull,
    /// Like `NotNull`, unless the named sibling member is present.
    NotNullUnless(&'static str),
    /// `Member must have value greater than or equal to N`.
    Ge(i64),
    /// `Member must have value less than or equal to N`.
    Le(i64),
    /// `Member must satisfy regular expression pattern: P`.
    Pattern(Pattern),
    /// `Member must have length greater than or equal to N` (UTF-16 units, bytes, items).
    LenGe(usize),
    /// `Member must have length less than or equal to N`.
    LenLe(usize),
    /// `Member must satisfy enum value set: [..]`.
    Enum(&'static [&'static str]),
    /// Every list item's length within the bounds.
    ChildLengths(usize, usize),
    /// Every map key's length within the bounds.
    ChildKeyLengths(usize, usize),
    /// Every map value's length within the bounds.
    ChildValueLengths(usize, usize),
}

/// The regular expressions the service checks, matched by hand.
#[derive(Debug, Clone, Copy)]
pub enum Pattern {
    /// `[a-zA-Z0-9_.-]+`
    Name,
    /// `0|([1-9]\d{0,38})`
    HashKey,
    /// `0|([1-9]\d{0,128})`
    SequenceNumber,
    /// `arn:aws.*:kinesis:.*:\d{12}:stream/\S+`
    StreamArn,
    /// `^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+`
    ConsumerArn,
}

impl Pattern {
    /// The pattern as the service prints it.
    pub fn text(self) -> &'static str {
        match self {
            Pattern::Name => "[a-zA-Z0-9_.-]+",
            Pattern::HashKey => "0|([1-9]\\d{0,38})",
            Pattern::SequenceNumber => "0|([1-9]\\d{0,128})",
            Pattern::StreamArn => "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            Pattern::ConsumerArn => {
                "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+"
            }
        }
    }

    /// Whether `s` matches the whole pattern.
    pub fn matches(self, s: &str) -> bool {
        let name = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        };
        let digits = |t: &str, max: usize| {
            t == "0"
                || (!t.is_empty()
                    && t.len() <= max + 1
                    && !t.starts_with('0')
                    && t.bytes().all(|b| b.is_ascii_digit()))
        };
        match self {
            Pattern::Name => name(s),
            Pattern::HashKey => digits(s, 38),
            Pattern::SequenceNumber => digits(s, 128),
            Pattern::StreamArn => arn_resource(s)
                .and_then(|r| r.strip_prefix("stream/"))
                .is_some_and(|r| !r.is_empty() && !r.chars().any(char::is_whitespace)),
            Pattern::ConsumerArn => arn_resource(s).is_some_and(|r| {
                let Some(i) = r.find("stream/") else {
                    return false;
                };
                let mut parts = r[i + 7..].splitn(3, '/');
                let (Some(stream), Some("consumer"), Some(rest)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return false;
                };
                let Some((consumer, ts)) = rest.rsplit_once(':') else {
                    return false;
                };
                name(stream)
                    && name(consumer)
                    && !ts.is_empty()
                    && ts.bytes().take_while(u8::is_ascii_digit).count() > 0
            }),
        }
    }
}

/// The part after `arn:aws*:kinesis:<region>:<12 digits>:` of a Kinesis ARN.
pub fn arn_resource(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("arn:aws")?;
    let i = rest.find(":kinesis:")?;
    let rest = &rest[i + ":kinesis:".len()..];
    // `.*` before the account may itself hold colons: find a `:dddddddddddd:` run.
    let b = rest.as_bytes();
    (0..b.len()).find_map(|p| {
        let acct = b.get(p + 1..p + 13)?;
        (b[p] == b':' && acct.iter().all(u8::is_ascii_digit) && b.get(p + 13) == Some(&b':'))
            .then(|| &rest[p + 14..])
    })
}

/// One member of a structure.
#[derive(Debug)]
pub struct Member {
    /// Its name in the document (`StreamName`).
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
    /// Its constraints, in checking order.
    pub rules: &'static [Rule],
    /// How a list's items print in messages (`com.amazonaws...PutRecordsRequestEntry@...`).
    pub member_str: Option<&'static str>,
}

const fn m(name: &'static str, ty: Type, rules: &'static [Rule]) -> Member {
    Member {
        name,
        ty,
        rules,
        member_str: None,
    }
}

const NAME: &[Rule] = &[
    Rule::Pattern(Pattern::Name),
    Rule::LenGe(1),
    Rule::LenLe(128),
];
const STREAM_NAME_RULES: &[Rule] = &[
    Rule::NotNullUnless("StreamARN"),
    Rule::Pattern(Pattern::Name),
    Rule::LenGe(1),
    Rule::LenLe(128),
];
const REQUIRED_NAME: &[Rule] = &[
    Rule::NotNull,
    Rule::Pattern(Pattern::Name),
    Rule::LenGe(1),
    Rule::LenLe(128),
];
const STREAM_NAME: Member = m("StreamName", Type::Str, STREAM_NAME_RULES);
const STREAM_ARN: Member = m(
    "StreamARN",
    Type::Str,
    &[
        Rule::Pattern(Pattern::StreamArn),
        Rule::LenGe(1),
        Rule::LenLe(2048),
    ],
);
const LIMIT_10000: &[Rule] = &[Rule::Ge(1), Rule::Le(10000)];
const STRING: Member = m("member", Type::Str, &[]);
const TAG_MAP: &[Rule] = &[
    Rule::LenGe(1),
    Rule::LenLe(200),
    Rule::ChildKeyLengths(1, 128),
    Rule::ChildValueLengths(0, 256),
];
const RETENTION: &[Member] = &[
    m(
        "RetentionPeriodHours",
        Type::Int,
        &[Rule::NotNull, Rule::Ge(1)],
    ),
    STREAM_NAME,
    STREAM_ARN,
];

const PUT_RECORDS_ENTRY: &[Member] = &[
    m(
        "PartitionKey",
        Type::Str,
        &[Rule::NotNull, Rule::LenGe(1), Rule::LenLe(256)],
    ),
    m(
        "ExplicitHashKey",
        Type::Str,
        &[Rule::Pattern(Pattern::HashKey)],
    ),
    m("Data", Type::Blob, &[Rule::NotNull, Rule::LenLe(1_048_576)]),
];
const PUT_RECORDS_ITEM: Member = m("member", Type::Struct(PUT_RECORDS_ENTRY), &[]);
const SHARD_FILTER: &[Member] = &[
    m(
        "Type",
        Type::Str,
        &[
            Rule::NotNull,
            Rule::Enum(&[
                "AFTER_SHARD_ID",
                "AT_TRIM_HORIZON",
                "FROM_TRIM_HORIZON",
                "AT_LATEST",
                "AT_TIMESTAMP",
                "FROM_TIMESTAMP",
            ]),
        ],
    ),
    m("ShardId", Type::Str, NAME),
    m("Timestamp", Type::Timestamp, &[]),
];
const STREAM_MODE: &[Member] = &[m(
    "StreamMode",
    Type::Str,
    &[Rule::NotNull, Rule::Enum(&["PROVISIONED", "ON_DEMAND"])],
)];
const STARTING_POSITION: &[Member] = &[
    m(
        "Type",
        Type::Str,
        &[
            Rule::NotNull,
            Rule::Enum(&[
                "AT_SEQUENCE_NUMBER",
                "AFTER_SEQUENCE_NUMBER",
                "TRIM_HORIZON",
                "LATEST",
                "AT_TIMESTAMP",
            ]),
        ],
    ),
    m(
        "SequenceNumber",
        Type::Str,
        &[Rule::Pattern(Pattern::SequenceNumber)],
    ),
    m("Timestamp", Type::Timestamp, &[]),
];
const CONSUMER_ARN: Member = m(
    "ConsumerARN",
    Type::Str,
    &[
        Rule::Pattern(Pattern::ConsumerArn),
        Rule::LenGe(1),
        Rule::LenLe(2048),
    ],
);

/// The members of `action`'s request; `None` for an unknown action.
pub fn request(action: &str) -> Option<&'static [Member]> {
    Some(match action {
        "AddTagsToStream" => {
            const M: &[Member] = &[
                m(
                    "Tags",
                    Type::Map(&STRING),
                    &[
                        Rule::NotNull,
                        Rule::LenGe(1),
                        Rule::LenLe(200),
                        Rule::ChildKeyLengths(1, 128),
                        Rule::ChildValueLengths(0, 256),
                    ],
                ),
                STREAM_NAME,
                STREAM_ARN,
            ];
            M
        }
        "CreateStream" => {
            const M: &[Member] = &[
                m(
                    "ShardCount",
                    Type::Int,
                    &[
                        Rule::NotNullUnless("StreamModeDetails"),
                        Rule::Ge(1),
                        Rule::Le(100_000),
                    ],
                ),
                m("StreamName", Type::Str, REQUIRED_NAME),
                m("StreamModeDetails", Type::Struct(STREAM_MODE), &[]),
                m("Tags", Type::Map(&STRING), TAG_MAP),
            ];
            M
        }
        "DecreaseStreamRetentionPeriod" | "IncreaseStreamRetentionPeriod" => RETENTION,
        "DeleteStream" => {
            const M: &[Member] = &[
                STREAM_NAME,
                m("EnforceConsumerDeletion", Type::Bool, &[]),
                STREAM_ARN,
            ];
            M
        }
        "DescribeStream" => {
            const M: &[Member] = &[
                m("Limit", Type::Int, LIMIT_10000),
                m("ExclusiveStartShardId", Type::Str, NAME),
                STREAM_NAME,
                STREAM_ARN,
            ];
            M
        }
        "DescribeStreamSummary" => {
            const M: &[Member] = &[STREAM_NAME, STREAM_ARN];
            M
        }
        "DescribeLimits" => {
            const M: &[Member] = &[];
            M
        }
        "GetRecords" => {
            const M: &[Member] = &[
                m("Limit", Type::Int, LIMIT_10000),
                m(
                    "ShardIterator",
                    Type::Str,
                    &[Rule::NotNull, Rule::LenGe(1), Rule::LenLe(512)],
                ),
                STREAM_ARN,
            ];
            M
        }
        "GetShardIterator" => {
            const M: &[Member] = &[
                m("ShardId", Type::Str, REQUIRED_NAME),
                m(
                    "ShardIteratorType",
                    Type::Str,
                    &[
                        Rule::NotNull,
                        Rule::Enum(&[
                            "AFTER_SEQUENCE_NUMBER",
                            "LATEST",
                            "AT_TIMESTAMP",
                            "AT_SEQUENCE_NUMBER",
                            "TRIM_HORIZON",
                        ]),
                    ],
                ),
                m(
                    "StartingSequenceNumber",
                    Type::Str,
                    &[Rule::Pattern(Pattern::SequenceNumber)],
                ),
                STREAM_NAME,
                m("Timestamp", Type::Timestamp, &[]),
                STREAM_ARN,
            ];
            M
        }
        "ListShards" => {
            const M: &[Member] = &[
                m("ExclusiveStartShardId", Type::Str, NAME),
                m("MaxResults", Type::Int, LIMIT_10000),
                m(
                    "NextToken",
                    Type::Str,
                    &[Rule::LenGe(1), Rule::LenLe(1_048_576)],
                ),
                m("StreamCreationTimestamp", Type::Timestamp, &[]),
                m("StreamName", Type::Str, NAME),
                m("ShardFilter", Type::Struct(SHARD_FILTER), &[]),
                STREAM_ARN,
            ];
            M
        }
        "ListStreams" => {
            const M: &[Member] = &[
                m("Limit", Type::Int, LIMIT_10000),
                m("ExclusiveStartStreamName", Type::Str, NAME),
                m(
                    "NextToken",
                    Type::Str,
                    &[Rule::LenGe(1), Rule::LenLe(1_048_576)],
                ),
            ];
            M
        }
        "ListTagsForStream" => {
            const M: &[Member] = &[
                m("Limit", Type::Int, &[Rule::Ge(1), Rule::Le(50)]),
                m(
                    "ExclusiveStartTagKey",
                    Type::Str,
                    &[Rule::LenGe(1), Rule::LenLe(128)],
                ),
                STREAM_NAME,
                STREAM_ARN,
            ];
            M
        }
        "MergeShards" => {
            const M: &[Member] = &[
                m("ShardToMerge", Type::Str, REQUIRED_NAME),
                m("AdjacentShardToMerge", Type::Str, REQUIRED_NAME),
                STREAM_NAME,
                STREAM_ARN,
            ];
            M
        }
        "PutRecord" => {
            const M: &[Member] = &[
                m(
                    "SequenceNumberForOrdering",
                    Type::Str,
                    &[Rule::Pattern(Pattern::SequenceNumber)],
                ),
                m(
                    "PartitionKey",
                    Type::Str,
                    &[Rule::NotNull, Rule::LenGe(1), Rule::LenLe(256)],
                ),
                m(
                    "ExplicitHashKey",
                    Type::Str,
                    &[Rule::Pattern(Pattern::HashKey)],
                ),
                m("Data", Type::Blob, &[Rule::NotNull, Rule::LenLe(1_048_576)]),
                STREAM_NAME,
                STREAM_ARN,
            ];
            M
        }
        "PutRecords" => {
            const M: &[Member] = &[
                Member {
                    name: "Records",
                    ty: Type::List(&PUT_RECORDS_ITEM),
                    rules: &[Rule::NotNull, Rule::LenGe(1), Rule::LenLe(500)],
                    member_str: Some(
                        "com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310",
                    ),
                },
                STREAM_NAME,
                STREAM_ARN,
            ];
            M
        }
        "RemoveTagsFromStream" => {
            const M: &[Member] = &[
                m(
                    "TagKeys",
                    Type::List(&STRING),
                    &[
                        Rule::NotNull,
                        Rule::LenGe(1),
                        Rule::LenLe(50),
                        Rule::ChildLengths(1, 128),
                    ],
                ),
                STREAM_NAME,
                STREAM_ARN,
            ];
            M
        }
        "SplitShard" => {
            const M: &[Member] = &[
                m(
                    "NewStartingHashKey",
                    Type::Str,
                    &[Rule::NotNull, Rule::Pattern(Pattern::HashKey)],
                ),
                STREAM_NAME,
                m("ShardToSplit", Type::Str, REQUIRED_NAME),
                STREAM_ARN,
            ];
            M
        }
        "UpdateShardCount" => {
            const M: &[Member] = &[
                STREAM_NAME,
                m("TargetShardCount", Type::Int, &[Rule::NotNull, Rule::Ge(1)]),
                m(
                    "ScalingType",
                    Type::Str,
                    &[Rule::NotNull, Rule::Enum(&["UNIFORM_SCALING"])],
                ),
                STREAM_ARN,
            ];
            M
        }
        "RegisterStreamConsumer" => {
            const M: &[Member] = &[
                m(
                    "StreamARN",
                    Type::Str,
                    &[
                        Rule::NotNull,
                        Rule::Pattern(Pattern::StreamArn),
                        Rule::LenGe(1),
                        Rule::LenLe(2048),
                    ],
                ),
                m("ConsumerName", Type::Str, REQUIRED_NAME),
                m("Tags", Type::Map(&STRING), TAG_MAP),
            ];
            M
        }
        "DescribeStreamConsumer" | "DeregisterStreamConsumer" => {
            const M: &[Member] = &[STREAM_ARN, m("ConsumerName", Type::Str, NAME), CONSUMER_ARN];
            M
        }
        "ListStreamConsumers" => {
            const M: &[Member] = &[
                m(
                    "StreamARN",
                    Type::Str,
                    &[
                        Rule::NotNull,
                        Rule::Pattern(Pattern::StreamArn),
                        Rule::LenGe(1),
                        Rule::LenLe(2048),
                    ],
                ),
                m(
                    "NextToken",
                    Type::Str,
                    &[Rule::LenGe(1), Rule::LenLe(1_048_576)],
                ),
                m("MaxResults", Type::Int, LIMIT_10000),
                m("StreamCreationTimestamp", Type::Timestamp, &[]),
            ];
            M
        }
        "SubscribeToShard" => {
            const M: &[Member] = &[
                m(
                    "ConsumerARN",
                    Type::Str,
                    &[
                        Rule::NotNull,
                        Rule::Pattern(Pattern::ConsumerArn),
                        Rule::LenGe(1),
                        Rule::LenLe(2048),
                    ],
                ),
                m("ShardId", Type::Str, REQUIRED_NAME),
                m(
                    "StartingPosition",
                    Type::Struct(STARTING_POSITION),
                    &[Rule::NotNull],
                ),
            ];
            M
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_the_service_regexes() {
        assert!(Pattern::Name.matches("a.b-c_9"));
        assert!(!Pattern::Name.matches("") && !Pattern::Name.matches("a/b"));
        assert!(Pattern::HashKey.matches("0") && Pattern::HashKey.matches(&"9".repeat(39)));
        assert!(!Pattern::HashKey.matches("01") && !Pattern::HashKey.matches(&"9".repeat(40)));
        assert!(!Pattern::HashKey.matches("") && !Pattern::HashKey.matches("-1"));
        assert!(Pattern::StreamArn.matches("arn:aws:kinesis:us-east-1:123456789012:stream/s1"));
        assert!(Pattern::StreamArn.matches("arn:aws-cn:kinesis:x:y:123456789012:stream/s"));
        assert!(!Pattern::StreamArn.matches("arn:aws:kinesis:us-east-1:1234:stream/s1"));
        assert!(!Pattern::StreamArn.matches("arn:aws:kinesis:us-east-1:123456789012:stream/"));
        assert!(
            Pattern::ConsumerArn
                .matches("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1700000000")
        );
        assert!(
            !Pattern::ConsumerArn
                .matches("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c")
        );
    }

    #[test]
    fn every_action_has_a_shape() {
        for a in crate::ACTIONS {
            assert!(request(a).is_some(), "{a}");
        }
        assert!(request("Whatever").is_none());
    }
}
