import { describe, expect, it } from 'vitest'
import { ACCOUNT, dynamodbChecks, isAllowed, REGION, type Statement } from './cloud.js'

const TABLE = 'arn:aws:dynamodb:eu-west-1:111111111111:table/t'

/** A grant as lib/table-access.ts writes it: writes to sessions and events only. */
const statements: Statement[] = [
  {
    Effect: 'Allow',
    Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
    Resource: TABLE,
    Condition: {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['SESSION#*', 'EVENT#*'] },
    },
  },
  {
    Effect: 'Allow',
    Action: 'dynamodb:BatchGetItem',
    Resource: TABLE,
    Condition: {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['SESSION#*', 'USER#*'] },
    },
  },
]
const keys = (...values: string[]) => ({ 'dynamodb:LeadingKeys': values })

describe('the stack harness evaluates dynamodb:LeadingKeys as IAM does', () => {
  it('allows a write to the partitions granted, and denies one to a user', () => {
    expect(isAllowed(statements, 'dynamodb:UpdateItem', TABLE, keys('SESSION#s1'))).toBe(true)
    expect(isAllowed(statements, 'dynamodb:PutItem', TABLE, keys('EVENT#e1'))).toBe(true)
    expect(isAllowed(statements, 'dynamodb:UpdateItem', TABLE, keys('USER#u1'))).toBe(false)
    expect(isAllowed(statements, 'dynamodb:PutItem', TABLE, keys('USERNAME#alice'))).toBe(false)
  })

  it('denies a batch when any one of its keys is outside the grant', () => {
    expect(
      isAllowed(statements, 'dynamodb:BatchGetItem', TABLE, keys('SESSION#s1', 'USER#u1')),
    ).toBe(true)
    expect(
      isAllowed(statements, 'dynamodb:BatchGetItem', TABLE, keys('SESSION#s1', 'EVENT#e1')),
    ).toBe(false)
  })

  it('refuses a single-valued operator on a set, rather than misread it', () => {
    const single = [{ ...statements[0], Condition: { StringLike: keys('SESSION#*') } }]
    expect(() => isAllowed(single, 'dynamodb:PutItem', TABLE, keys('SESSION#s1'))).toThrow(
      /on a set/,
    )
  })
})

describe('the stack harness reads the leading keys of every request', () => {
  const S = (value: string) => ({ S: value })
  const table = (name: string) => `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${name}`

  it('of an item call, a transaction (per item) and a batch (every key)', () => {
    expect(
      dynamodbChecks('UpdateItem', { TableName: 't', Key: { pk: S('USER#u1'), sk: S('USER') } }),
    ).toEqual([['dynamodb:UpdateItem', table('t'), ['USER#u1']]])
    expect(
      dynamodbChecks('PutItem', { TableName: 't', Item: { pk: S('EVENT#e1'), sk: S('EVENT') } }),
    ).toEqual([['dynamodb:PutItem', table('t'), ['EVENT#e1']]])
    expect(
      dynamodbChecks('TransactWriteItems', {
        TransactItems: [
          { Update: { TableName: 't', Key: { pk: S('SESSION#s1'), sk: S('SESSION') } } },
          { Put: { TableName: 't', Item: { pk: S('EVENT#e1'), sk: S('EVENT') } } },
          { ConditionCheck: { TableName: 't', Key: { pk: S('USER#u1'), sk: S('USER') } } },
        ],
      }),
    ).toEqual([
      ['dynamodb:UpdateItem', table('t'), ['SESSION#s1']],
      ['dynamodb:PutItem', table('t'), ['EVENT#e1']],
      ['dynamodb:ConditionCheckItem', table('t'), ['USER#u1']],
    ])
    expect(
      dynamodbChecks('BatchGetItem', {
        RequestItems: {
          t: {
            Keys: [
              { pk: S('SESSION#s1'), sk: S('SESSION') },
              { pk: S('USER#u1'), sk: S('USER') },
            ],
          },
        },
      }),
    ).toEqual([['dynamodb:BatchGetItem', table('t'), ['SESSION#s1', 'USER#u1']]])
  })

  it('and none of a query on the index, whose grant carries no condition', () => {
    expect(dynamodbChecks('Query', { TableName: 't', IndexName: 'gsi1' })).toEqual([
      ['dynamodb:Query', `${table('t')}/index/gsi1`],
    ])
  })
})
