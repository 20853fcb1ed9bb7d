import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb'

/**
 * The single table (docs/design.md "Storage"). Items:
 *
 * | item            | pk                | sk             | gsi1pk             | gsi1sk                  |
 * |-----------------|-------------------|----------------|--------------------|-------------------------|
 * | user            | `USER#<sub>`      | `USER`         | `USERNAME#<name>`  | `USER`                  |
 * | username claim  | `USERNAME#<name>` | `USERNAME`     |                    |                         |
 * | session         | `SESSION#<sid>`   | `SESSION`      | `USER#<sub>`       | `SESSION#<created>#<sid>` |
 * | issued token    | `SESSION#<sid>`   | `TOKEN#<hash>` |                    |                         |
 * | failed logins   | `USERNAME#<name>` | `THROTTLE`     | `USERNAME#<name>`  | `THROTTLE`              |
 *
 * The one GSI is overloaded: by username it finds a user at login, by user it
 * lists their sessions. `expires_at` (epoch seconds) is the TTL attribute.
 * The failed-logins record sits in the GSI under the username too, so that
 * login's one Query returns it with the user (and alone for unknown usernames).
 */
export const GSI1 = 'gsi1'
export const TTL_ATTRIBUTE = 'expires_at'

export function tableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
      { AttributeName: 'gsi1pk', AttributeType: 'S' },
      { AttributeName: 'gsi1sk', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: GSI1,
        KeySchema: [
          { AttributeName: 'gsi1pk', KeyType: 'HASH' },
          { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  }
}
